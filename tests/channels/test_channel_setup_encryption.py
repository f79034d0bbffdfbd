"""P13 for channels: every provider credential is encrypted at rest and follows key rotation."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.db import connection

from channels_app.models import Channel
from salesos.encryption import encrypted_fields, generate_key_spec, key_id_of
from tenants.context import tenant_context
from tests.factories import ChannelFactory

pytestmark = pytest.mark.django_db

SECRETS = {
    "twilio_auth_token": "twilio-auth-token-in-clear-0001",
    "twilio_webhook_signing_secret": "twilio-shared-key-in-clear-0002",
    "meta_access_token": "EAAG-access-token-in-clear-0003",
    "meta_app_secret": "meta-app-secret-in-clear-0004",
    "meta_verify_token": "meta-verify-token-in-clear-0005",
    "sandbox_secret": "sandbox-secret-in-clear-0006",
}


def stored(channel: Channel) -> dict[str, str]:
    """The columns as the database holds them."""
    columns = ", ".join(connection.ops.quote_name(name) for name in SECRETS)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {columns} FROM channels_app_channel WHERE id = %s",
            [channel.pk],
        )
        row = cursor.fetchone()
    return dict(zip(SECRETS, row, strict=True))


def test_every_channel_secret_is_an_encrypted_field():
    encrypted = {field.name for model, field in encrypted_fields() if model is Channel}

    assert set(SECRETS) <= encrypted


def test_the_columns_hold_no_clear_secret(tenant_a, settings):
    settings.FIELD_ENCRYPTION_KEYS = generate_key_spec("k1")
    channel = ChannelFactory(tenant=tenant_a, twilio=True, **SECRETS)

    with tenant_context(tenant_a):
        columns = stored(channel)
        loaded = Channel.objects.get(pk=channel.pk)
    for name, secret in SECRETS.items():
        assert secret not in columns[name]
        assert columns[name].startswith("gcm1:k1:")
        assert getattr(loaded, name) == secret


def test_rotation_re_encrypts_channel_secrets_under_the_newest_key(tenant_a, settings):
    old = generate_key_spec("old")
    settings.FIELD_ENCRYPTION_KEYS = old
    channel = ChannelFactory(tenant=tenant_a, twilio=True, **SECRETS)
    without_secrets = ChannelFactory(tenant=tenant_a, sandbox_secret="")

    new = generate_key_spec("new")
    settings.FIELD_ENCRYPTION_KEYS = f"{new},{old}"
    out = io.StringIO()
    call_command("rotate_encryption_keys", stdout=out)

    assert "channels_app.Channel.meta_app_secret: 1 re-encrypted" in out.getvalue()
    settings.FIELD_ENCRYPTION_KEYS = new  # the old key is gone
    with tenant_context(tenant_a):
        columns = stored(channel)
        loaded = Channel.objects.get(pk=channel.pk)
        empty = Channel.objects.get(pk=without_secrets.pk)
    for name, secret in SECRETS.items():
        assert key_id_of(columns[name]) == "new", name
        assert secret not in columns[name]
        assert getattr(loaded, name) == secret
    assert empty.sandbox_secret == ""
