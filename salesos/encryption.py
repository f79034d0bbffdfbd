"""Encryption at rest for secrets (P13): AES-256-GCM with a rotatable key ring.

Keys come from the environment: `FIELD_ENCRYPTION_KEYS` is a comma-separated list of
`key-id:base64-32-bytes`, newest first. New values are always encrypted with the first key;
any key in the ring decrypts. Rotation: put a new key first, run
`manage.py rotate_encryption_keys` (re-encrypts every value under the newest key), then drop
the old key from the environment.

A stored value looks like `gcm1:<key-id>:<base64(nonce ‖ ciphertext ‖ tag)>`. The column's
identity (`app_label.Model.field`) is bound in as associated data, so a ciphertext copied into
another column or model does not decrypt.
"""

from __future__ import annotations

import base64
import binascii
import os
from dataclasses import dataclass
from functools import lru_cache

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models

PREFIX = "gcm1"
NONCE_BYTES = 12


class DecryptionError(ValueError):
    """A stored secret could not be decrypted (unknown key, tampered or misplaced value)."""


@dataclass(frozen=True)
class KeyRing:
    keys: tuple[tuple[str, bytes], ...]  # (key id, 32-byte key), newest first

    @property
    def current_id(self) -> str:
        return self.keys[0][0]

    def key(self, key_id: str) -> bytes:
        for candidate_id, key in self.keys:
            if candidate_id == key_id:
                return key
        raise DecryptionError(f"encryption key {key_id!r} is not in FIELD_ENCRYPTION_KEYS")


def parse_key_ring(spec: str) -> KeyRing:
    keys = []
    for item in filter(None, (part.strip() for part in spec.split(","))):
        key_id, sep, encoded = item.partition(":")
        if not sep or not key_id or ":" in encoded:
            raise ImproperlyConfigured(
                "FIELD_ENCRYPTION_KEYS entries look like key-id:base64-of-32-bytes"
            )
        try:
            key = base64.b64decode(encoded, validate=True)
        except binascii.Error as exc:
            raise ImproperlyConfigured(f"encryption key {key_id!r} is not valid base64") from exc
        if len(key) != 32:
            raise ImproperlyConfigured(f"encryption key {key_id!r} must be 32 bytes (AES-256)")
        if any(key_id == existing for existing, _ in keys):
            raise ImproperlyConfigured(f"encryption key id {key_id!r} appears twice")
        keys.append((key_id, key))
    if not keys:
        raise ImproperlyConfigured("FIELD_ENCRYPTION_KEYS holds no key")
    return KeyRing(tuple(keys))


@lru_cache(maxsize=4)
def _ring_for(spec: str) -> KeyRing:
    return parse_key_ring(spec)


def key_ring() -> KeyRing:
    return _ring_for(settings.FIELD_ENCRYPTION_KEYS)


def generate_key_spec(key_id: str) -> str:
    return f"{key_id}:{base64.b64encode(os.urandom(32)).decode()}"


def encrypt(plaintext: str, *, context: str, ring: KeyRing | None = None) -> str:
    ring = ring or key_ring()
    nonce = os.urandom(NONCE_BYTES)
    sealed = AESGCM(ring.key(ring.current_id)).encrypt(nonce, plaintext.encode(), context.encode())
    return f"{PREFIX}:{ring.current_id}:{base64.b64encode(nonce + sealed).decode()}"


def key_id_of(stored: str) -> str | None:
    parts = stored.split(":", 2)
    return parts[1] if len(parts) == 3 and parts[0] == PREFIX else None


def decrypt(stored: str, *, context: str, ring: KeyRing | None = None) -> str:
    ring = ring or key_ring()
    prefix, _, rest = stored.partition(":")
    key_id, _, payload = rest.partition(":")
    if prefix != PREFIX or not key_id or not payload:
        raise DecryptionError("not an encrypted value")
    key = ring.key(key_id)
    try:
        raw = base64.b64decode(payload, validate=True)
        return AESGCM(key).decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], context.encode()).decode()
    except (InvalidTag, binascii.Error, ValueError) as exc:
        raise DecryptionError("the encrypted value is damaged or belongs elsewhere") from exc


class EncryptedTextField(models.TextField):
    """A text column stored encrypted. It cannot be searched or compared in SQL."""

    description = "Text encrypted at rest with AES-256-GCM"

    def contribute_to_class(self, cls, name, *args, **kwargs):
        super().contribute_to_class(cls, name, *args, **kwargs)
        self.encryption_context = f"{cls._meta.label}.{name}"

    def from_db_value(self, value, expression, connection):
        if value is None or value == "":
            return value
        return decrypt(value, context=self.encryption_context)

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        if value is None or value == "":
            return value
        return encrypt(value, context=self.encryption_context)

    def get_lookup(self, lookup_name):
        if lookup_name != "isnull":
            raise TypeError(f"{self.encryption_context} is encrypted and cannot be filtered")
        return super().get_lookup(lookup_name)


def encrypted_fields() -> list[tuple[type[models.Model], EncryptedTextField]]:
    from django.apps import apps

    return [
        (model, field)
        for model in apps.get_models()
        for field in model._meta.concrete_fields
        if isinstance(field, EncryptedTextField)
    ]
