"""Encryption at rest of API secrets: AES-256-GCM under a key derived from the server's master key.

HMAC verification needs the secret itself, so it cannot be stored as a one-way hash. Each secret is
sealed with a fresh 96-bit random nonce; the associated data binds the ciphertext to its API key and
user, so rows cannot be swapped. The master key is never used directly: HKDF-SHA256 derives the
encryption key, and a separate one-way derivation gives the public *key id* stored with each row, which
tells which master key sealed it (a wrong master key is detected at start-up, not per request).
"""

from __future__ import annotations

import hashlib
import secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .errors import AuthConfigError
from .masterkey import MASTER_KEY_BYTES

__all__ = ["SecretBox"]

_NONCE_BYTES = 12
_KEY_ID_LABEL = b"manticore-auth/key-id/v1\x00"
_ENCRYPTION_LABEL = b"manticore-auth/api-secret-encryption/v1"


class SecretBox:
    """Seals and opens API secrets with one master key; holds no plain copy of that key.

    Raises:
        AuthConfigError: ``master_key`` is not 32 bytes.
    """

    __slots__ = ("_aead", "key_id")

    def __init__(self, master_key: bytes) -> None:
        if not isinstance(master_key, (bytes, bytearray)) or len(master_key) != MASTER_KEY_BYTES:
            raise AuthConfigError(
                f"master_key must be {MASTER_KEY_BYTES} bytes (see load_or_create_master_key)"
            )
        material = bytes(master_key)
        self.key_id: str = hashlib.sha256(_KEY_ID_LABEL + material).hexdigest()[:16]
        derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_ENCRYPTION_LABEL).derive(
            material
        )
        self._aead = AESGCM(derived)

    def __repr__(self) -> str:
        return f"SecretBox(key_id={self.key_id!r})"

    def seal(self, plaintext: bytes, context: bytes) -> tuple[bytes, bytes]:
        """Encrypt ``plaintext`` bound to ``context``; return ``(nonce, ciphertext_with_tag)``."""
        nonce = secrets.token_bytes(_NONCE_BYTES)
        return nonce, self._aead.encrypt(nonce, plaintext, context)

    def open(self, nonce: bytes, ciphertext: bytes, context: bytes, key_id: str) -> bytes:
        """Decrypt what :meth:`seal` produced with the same ``context``.

        Raises:
            AuthConfigError: the row was sealed under another master key, or it was altered.
        """
        if key_id != self.key_id:
            raise AuthConfigError(
                f"API secret sealed under master key id {key_id!r}, this server has {self.key_id!r}"
            )
        try:
            return self._aead.decrypt(bytes(nonce), bytes(ciphertext), context)
        except InvalidTag:
            raise AuthConfigError("stored API secret failed authentication (altered row?)") from None
