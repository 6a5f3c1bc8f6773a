"""Encryption at rest for stored secrets (webhook signing secrets), with rotatable keys.

Keys come from AGENTFIELD_SECRET_KEYS (a comma-separated list of any high-entropy strings; each
becomes a Fernet key through SHA-256). The first key encrypts; every key decrypts, so rotation is:
put the new key first, keep the old ones, run `manage.py reseal_secrets` (`reseal()` over the
stored values), drop the old keys. Without the setting the key is derived from SECRET_KEY.

Stored values carry a "fernet:" prefix, so a value written before encryption was switched on
(plain text) is still read back as is.
"""

from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings

from agentfield_project.secret_key import LEGACY_DEFAULT

PREFIX = "fernet:"


class SecretDecryptionError(Exception):
    """stored secret cannot be decrypted with any configured key (AGENTFIELD_SECRET_KEYS)"""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.__doc__)


def _fernet_key(material: str) -> bytes:
    return base64.urlsafe_b64encode(hashlib.sha256(material.encode("utf-8")).digest())


def _keys() -> MultiFernet:
    materials = [key for key in settings.AGENTFIELD_SECRET_KEYS if key] or ["agentfield-secrets:" + settings.SECRET_KEY]
    return MultiFernet([Fernet(_fernet_key(material)) for material in materials])


def is_encrypted(stored: str) -> bool:
    return stored.startswith(PREFIX)


def encrypt(plain: str) -> str:
    """The value to store for `plain` ("" stays "": an absent secret needs no ciphertext)."""
    if not plain:
        return ""
    return PREFIX + _keys().encrypt(plain.encode("utf-8")).decode("ascii")


def decrypt(stored: str) -> str:
    """The plain secret of a stored value; SecretDecryptionError if no configured key fits."""
    if not is_encrypted(stored):
        return stored
    try:
        return _keys().decrypt(stored[len(PREFIX) :].encode("ascii")).decode("utf-8")
    except (InvalidToken, UnicodeError) as exc:
        raise SecretDecryptionError() from exc


def reseal(stored: str) -> str:
    """The stored value encrypted with the first (current) key; plain values get encrypted.

    Besides the configured keys it reads values sealed with the key derived from the constant
    SECRET_KEY this project once shipped with: that key is public, so such values must be resealed.
    """
    if not stored:
        return ""
    if not is_encrypted(stored):
        return encrypt(stored)
    token = stored[len(PREFIX) :].encode("ascii")
    try:
        return PREFIX + _keys().rotate(token).decode("ascii")
    except InvalidToken:
        pass
    try:
        plain = Fernet(_fernet_key("agentfield-secrets:" + LEGACY_DEFAULT)).decrypt(token)
    except InvalidToken as exc:
        raise SecretDecryptionError() from exc
    return encrypt(plain.decode("utf-8"))
