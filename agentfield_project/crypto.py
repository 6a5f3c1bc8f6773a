"""Encryption at rest for stored secrets (webhook signing secrets), with rotatable keys.

Keys come from AGENTFIELD_SECRET_KEYS (a comma-separated list of any high-entropy strings; each
becomes a Fernet key through SHA-256). The first key encrypts; every key decrypts, so rotation is:
put the new key first, keep the old ones, run `rotate()` over the stored values, drop the old
keys. Without the setting the key is derived from SECRET_KEY (fine for development only).

Stored values carry a "fernet:" prefix, so a value written before encryption was switched on
(plain text) is still read back as is.
"""

from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings

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


def rotate(stored: str) -> str:
    """The stored value re-encrypted with the first (current) key; plain values get encrypted."""
    if not stored:
        return ""
    if not is_encrypted(stored):
        return encrypt(stored)
    try:
        return PREFIX + _keys().rotate(stored[len(PREFIX) :].encode("ascii")).decode("ascii")
    except InvalidToken as exc:
        raise SecretDecryptionError() from exc
