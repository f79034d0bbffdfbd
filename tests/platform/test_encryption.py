"""P13: secrets are encrypted at rest with AES-256-GCM, and keys rotate."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.db import connection

from salesos.encryption import (
    DecryptionError,
    decrypt,
    encrypt,
    generate_key_spec,
    key_id_of,
    parse_key_ring,
)
from tenants.context import tenant_context
from tests.factories import ProbeSecretFactory
from tests.probe_app.models import ProbeSecret

SECRET = "EAAG-very-secret-access-token-123"


def _stored(secret: ProbeSecret) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT token FROM probe_probesecret WHERE id = %s", [secret.pk])
        row = cursor.fetchone()
    return row[0] if row else None


@pytest.fixture
def ring_one(settings):
    settings.FIELD_ENCRYPTION_KEYS = generate_key_spec("one")
    return settings


@pytest.mark.django_db
def test_the_database_column_holds_no_clear_secret(tenant_a, ring_one):
    secret = ProbeSecretFactory(tenant=tenant_a, token=SECRET)
    with tenant_context(tenant_a):
        stored = _stored(secret)
        assert SECRET not in stored
        assert stored.startswith("gcm1:one:")
        assert ProbeSecret.objects.get(pk=secret.pk).token == SECRET


def test_the_same_secret_encrypts_differently_each_time(ring_one):
    first = encrypt(SECRET, context="a.B.c")
    assert first != encrypt(SECRET, context="a.B.c")
    assert decrypt(first, context="a.B.c") == SECRET


def test_a_value_moved_to_another_column_or_tampered_does_not_decrypt(ring_one):
    stored = encrypt(SECRET, context="channels_app.Channel.auth_token")
    with pytest.raises(DecryptionError):
        decrypt(stored, context="channels_app.Channel.app_secret")
    tampered = stored[:-4] + ("AAAA" if not stored.endswith("AAAA") else "BBBB")
    with pytest.raises(DecryptionError):
        decrypt(tampered, context="channels_app.Channel.auth_token")


@pytest.mark.django_db
def test_key_rotation_re_encrypts_under_the_newest_key(tenant_a, settings):
    old = generate_key_spec("old")
    settings.FIELD_ENCRYPTION_KEYS = old
    secrets = [ProbeSecretFactory(tenant=tenant_a, token=f"{SECRET}-{i}") for i in range(3)]
    empty = ProbeSecretFactory(tenant=tenant_a, token="")

    new = generate_key_spec("new")
    settings.FIELD_ENCRYPTION_KEYS = f"{new},{old}"
    with tenant_context(tenant_a):
        # Both keys in the ring: old values still read, new writes use the new key.
        assert ProbeSecret.objects.get(pk=secrets[0].pk).token == f"{SECRET}-0"
        assert key_id_of(_stored(secrets[0])) == "old"

    call_command("rotate_encryption_keys", stdout=open("/dev/null", "w"))  # noqa: SIM115

    settings.FIELD_ENCRYPTION_KEYS = new  # the old key is gone from the environment
    with tenant_context(tenant_a):
        for i, secret in enumerate(secrets):
            assert key_id_of(_stored(secret)) == "new"
            assert ProbeSecret.objects.get(pk=secret.pk).token == f"{SECRET}-{i}"
        assert ProbeSecret.objects.get(pk=empty.pk).token == ""


@pytest.mark.django_db
def test_a_value_under_a_key_no_longer_configured_fails_loudly(tenant_a, settings):
    settings.FIELD_ENCRYPTION_KEYS = generate_key_spec("gone")
    secret = ProbeSecretFactory(tenant=tenant_a, token=SECRET)
    settings.FIELD_ENCRYPTION_KEYS = generate_key_spec("other")
    with tenant_context(tenant_a), pytest.raises(DecryptionError, match="not in"):
        ProbeSecret.objects.get(pk=secret.pk)


@pytest.mark.django_db
def test_encrypted_columns_cannot_be_filtered(tenant_a):
    with tenant_context(tenant_a), pytest.raises(TypeError, match="encrypted"):
        ProbeSecret.objects.filter(token=SECRET).exists()


@pytest.mark.parametrize(
    "spec",
    ["", "nokey", "k1:not-base64!", "k1:c2hvcnQ=", f"a:{'B' * 43}=,a:{'A' * 43}="],
    ids=["empty", "no-separator", "not-base64", "too-short", "duplicate-id"],
)
def test_bad_key_configuration_is_refused_with_a_reason(spec):
    with pytest.raises(ImproperlyConfigured):
        parse_key_ring(spec)


def test_the_rotation_command_generates_a_valid_key():
    import io

    out = io.StringIO()
    call_command("rotate_encryption_keys", generate_key="k9", stdout=out)
    assert parse_key_ring(out.getvalue().strip()).current_id == "k9"
