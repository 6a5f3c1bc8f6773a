"""Stored secrets are encrypted with the first configured key and readable with any of them."""

import pytest
from django.test import override_settings

from agentfield_project.secret_key import LEGACY_DEFAULT
from webhooks import crypto


def test_encrypt_round_trips_and_hides_the_secret():
    stored = crypto.encrypt("whsec_c2VjcmV0")
    assert stored.startswith("fernet:") and "whsec_c2VjcmV0" not in stored
    assert crypto.decrypt(stored) == "whsec_c2VjcmV0"


def test_the_same_secret_encrypts_differently_each_time():
    assert crypto.encrypt("s") != crypto.encrypt("s")


def test_an_empty_secret_stays_empty():
    assert crypto.encrypt("") == "" and crypto.decrypt("") == "" and crypto.reseal("") == ""


def test_a_value_stored_before_encryption_is_read_back_as_is():
    assert crypto.decrypt("plain-legacy-secret") == "plain-legacy-secret"


def test_unicode_secrets_survive():
    assert crypto.decrypt(crypto.encrypt("sécret-秘密")) == "sécret-秘密"


def test_rotation_keeps_old_values_readable_and_rewrites_them_with_the_new_key():
    with override_settings(AGENTFIELD_SECRET_KEYS=["old-key-material"]):
        stored = crypto.encrypt("s3cret")
    with override_settings(AGENTFIELD_SECRET_KEYS=["new-key-material", "old-key-material"]):
        assert crypto.decrypt(stored) == "s3cret"
        rotated = crypto.reseal(stored)
        assert crypto.reseal("legacy").startswith("fernet:")
    with override_settings(AGENTFIELD_SECRET_KEYS=["new-key-material"]):
        assert crypto.decrypt(rotated) == "s3cret"
        with pytest.raises(crypto.SecretDecryptionError, match="AGENTFIELD_SECRET_KEYS"):
            crypto.decrypt(stored)


def test_without_configured_keys_the_key_comes_from_secret_key():
    with override_settings(AGENTFIELD_SECRET_KEYS=[], SECRET_KEY="one-" + "x" * 40):
        stored = crypto.encrypt("s3cret")
        assert crypto.decrypt(stored) == "s3cret"
    with override_settings(AGENTFIELD_SECRET_KEYS=[], SECRET_KEY="two-" + "x" * 40):
        with pytest.raises(crypto.SecretDecryptionError):
            crypto.decrypt(stored)


def test_a_tampered_value_is_refused():
    stored = crypto.encrypt("s3cret")
    with pytest.raises(crypto.SecretDecryptionError):
        crypto.decrypt(stored[:-4] + "AAAA")
    with pytest.raises(crypto.SecretDecryptionError):
        crypto.decrypt("fernet:not-base64-é")


def test_values_sealed_with_the_formerly_constant_key_are_resealed_with_the_current_one():
    with override_settings(AGENTFIELD_SECRET_KEYS=[], SECRET_KEY=LEGACY_DEFAULT):
        legacy = crypto.encrypt("s3cret")
    with override_settings(AGENTFIELD_SECRET_KEYS=["current-key-material"]):
        with pytest.raises(crypto.SecretDecryptionError):
            crypto.decrypt(legacy)  # the public key is not a configured one: it only reseals
        resealed = crypto.reseal(legacy)
        assert crypto.decrypt(resealed) == "s3cret"
        with pytest.raises(crypto.SecretDecryptionError):
            crypto.reseal(crypto.encrypt("x")[:-4] + "AAAA")
