"""The platform admin for messaging, CRM and consent models: every tenant's rows, no secrets
in clear, message text only on an object's own page, the consent ledger read-only."""

from __future__ import annotations

import pytest
from django.urls import reverse

from channels_app.models import (
    Channel,
    Conversation,
    InboundWebhook,
    Message,
    MessageStatusEvent,
    MessageTemplate,
)
from crm.models import Contact
from privacy.models import ConsentEvent, ConsentState, MessagingPolicy
from tenants.context import platform_access
from tests.factories import (
    ChannelFactory,
    ConsentEventFactory,
    ConsentStateFactory,
    ContactFactory,
    ConversationFactory,
    InboundWebhookFactory,
    MessageFactory,
    MessageStatusEventFactory,
    MessageTemplateFactory,
    MessagingPolicyFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

SECRETS = {
    "twilio_auth_token": "twilio-token-NEVER-IN-ADMIN-1",
    "twilio_webhook_signing_secret": "twilio-shared-key-NEVER-IN-ADMIN-2",
    "meta_access_token": "EAAG-token-NEVER-IN-ADMIN-3",
    "meta_app_secret": "meta-app-secret-NEVER-IN-ADMIN-4",
    "meta_verify_token": "meta-verify-NEVER-IN-ADMIN-5",
    "sandbox_secret": "sandbox-key-NEVER-IN-ADMIN-6",
}


def changelist(model):
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")


def change(obj):
    meta = obj._meta
    return reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[obj.pk])


def delete(obj):
    meta = obj._meta
    return reverse(f"admin:{meta.app_label}_{meta.model_name}_delete", args=[obj.pk])


@pytest.fixture
def staff_client(client, db):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


@pytest.fixture
def channel_with_every_secret(tenant_a):
    return ChannelFactory(tenant=tenant_a, twilio=True, name="Secretive", **SECRETS)


def test_channel_pages_never_show_a_secret(staff_client, channel_with_every_secret):
    channel = channel_with_every_secret
    pages = [
        staff_client.get(changelist(Channel)),
        staff_client.get(changelist(Channel), {"q": "Secretive"}),
        staff_client.get(change(channel)),
    ]

    for response in pages:
        assert response.status_code == 200
        assert b"Secretive" in response.content
        for secret in SECRETS.values():
            assert secret.encode() not in response.content
        assert channel.webhook_token.encode() not in response.content
    detail = pages[-1].content.decode()
    assert detail.count(">set<") >= len(SECRETS)
    assert 'name="twilio_auth_token"' not in detail


def test_saving_a_channel_in_the_admin_keeps_its_secrets(staff_client, channel_with_every_secret):
    channel = channel_with_every_secret

    response = staff_client.post(
        change(channel), {"name": "Renamed by staff", "rate_limit_per_second": "5"}
    )

    assert response.status_code == 302
    with platform_access():
        saved = Channel.unscoped.get(pk=channel.pk)
    assert saved.name == "Renamed by staff"
    assert saved.is_active is False  # the unchecked box: staff switched it off
    assert saved.rate_limit_per_second == 5
    for field, secret in SECRETS.items():
        assert getattr(saved, field) == secret


def test_every_messaging_model_is_listed_and_opens(staff_client, tenant_a, tenant_b):
    conversation = ConversationFactory(tenant=tenant_a)
    objects = [
        conversation.channel,
        conversation,
        MessageFactory(tenant=tenant_a, conversation=conversation),
        MessageStatusEventFactory(tenant=tenant_a),
        MessageTemplateFactory(tenant=tenant_a),
        InboundWebhookFactory(tenant=tenant_a),
        conversation.contact,
        ConsentEventFactory(tenant=tenant_a),
        ConsentStateFactory(tenant=tenant_a),
        MessagingPolicyFactory(tenant=tenant_a),
        ContactFactory(tenant=tenant_b),
    ]
    for obj in objects:
        listing = staff_client.get(changelist(type(obj)))
        page = staff_client.get(change(obj))

        assert listing.status_code == 200, type(obj)
        assert page.status_code == 200, type(obj)


def test_lists_are_filterable_by_tenant(staff_client, tenant_a, tenant_b):
    alpha = ContactFactory(tenant=tenant_a, name="Alpha Customer")
    bravo = ContactFactory(tenant=tenant_b, name="Bravo Customer")

    html = staff_client.get(
        changelist(Contact), {"tenant__id__exact": tenant_b.pk}
    ).content.decode()

    assert bravo.name in html and alpha.name not in html


def test_message_text_shows_only_on_the_message_page(staff_client, tenant_a):
    message = MessageFactory(tenant=tenant_a, body="My tooth hurts since Tuesday")
    webhook = InboundWebhookFactory(tenant=tenant_a, body='{"body": "raw payload text"}')
    conversation = ConversationFactory(tenant=tenant_a, last_message_preview="Preview words")

    assert b"My tooth hurts" not in staff_client.get(changelist(Message)).content
    assert b"My tooth hurts" in staff_client.get(change(message)).content
    assert b"raw payload text" not in staff_client.get(changelist(InboundWebhook)).content
    assert b"raw payload text" in staff_client.get(change(webhook)).content
    assert b"Preview words" not in staff_client.get(changelist(Conversation)).content
    assert b"Preview words" in staff_client.get(change(conversation)).content


def test_the_consent_ledger_cannot_be_changed_or_deleted(staff_client, tenant_a):
    event = ConsentEventFactory(tenant=tenant_a, evidence="Said yes at the front desk")

    page = staff_client.get(change(event)).content.decode()
    posted = staff_client.post(change(event), {"evidence": "tampered"})
    deleted = staff_client.post(delete(event), {"post": "yes"})
    bulk = staff_client.post(
        changelist(ConsentEvent), {"action": "delete_selected", "_selected_action": [event.pk]}
    )

    assert "Said yes at the front desk" in page
    assert 'name="evidence"' not in page
    assert posted.status_code == 403
    assert deleted.status_code == 403
    assert bulk.status_code in (200, 302)
    with platform_access():
        kept = ConsentEvent.unscoped.get(pk=event.pk)
    assert kept.evidence == "Said yes at the front desk"


@pytest.mark.parametrize(
    "model",
    [
        Conversation,
        Message,
        MessageStatusEvent,
        MessageTemplate,
        InboundWebhook,
        Contact,
        ConsentEvent,
        ConsentState,
        MessagingPolicy,
    ],
)
def test_records_are_read_only_for_staff(rf, model):
    from django.contrib import admin

    model_admin = admin.site._registry[model]
    request = rf.get("/admin/")

    assert not model_admin.has_add_permission(request)
    assert not model_admin.has_change_permission(request)
    assert not model_admin.has_delete_permission(request)


def test_channels_cannot_be_added_or_deleted_from_the_admin(rf):
    from django.contrib import admin

    model_admin = admin.site._registry[Channel]
    request = rf.get("/admin/")

    assert not model_admin.has_add_permission(request)
    assert not model_admin.has_delete_permission(request)
