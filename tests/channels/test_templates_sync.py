"""Template sync: the provider's templates are upserted by name and language; ones that are
gone are disabled, never deleted (sent messages point at them)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from channels_app.models import Channel, Message, MessageTemplate
from channels_app.providers.base import ProviderError
from channels_app.services.channels import GONE_REASON, sync_templates
from channels_app.tasks import sync_templates as sync_templates_task
from tenants.context import tenant_context
from tests.factories import ChannelFactory, MessageFactory, MessageTemplateFactory

pytestmark = pytest.mark.django_db


def templates_of(tenant, channel) -> dict[tuple[str, str], MessageTemplate]:
    with tenant_context(tenant):
        return {(t.name, t.language): t for t in MessageTemplate.objects.filter(channel=channel)}


def test_the_sandbox_templates_are_synced(tenant_a):
    channel = ChannelFactory(tenant=tenant_a)

    with tenant_context(tenant_a):
        result = sync_templates(channel=channel)

    templates = templates_of(tenant_a, channel)
    assert result.created == 2 and result.total == 2
    follow_up = templates[("follow_up", "en")]
    assert follow_up.status == MessageTemplate.Status.APPROVED
    assert follow_up.category == MessageTemplate.Category.UTILITY
    assert follow_up.variables == ["1"]
    assert follow_up.provider_template_id == "sandbox-follow_up-en"
    assert templates[("appointment_reminder", "en")].variables == ["1", "2"]
    with tenant_context(tenant_a):
        channel.refresh_from_db()
    assert channel.templates_synced_at is not None


def test_syncing_twice_changes_nothing(tenant_a):
    channel = ChannelFactory(tenant=tenant_a)

    with tenant_context(tenant_a):
        sync_templates(channel=channel)
        ids = {key: t.pk for key, t in templates_of(tenant_a, channel).items()}
        again = sync_templates(channel=channel)

    assert (again.created, again.updated, again.unchanged, again.disabled) == (0, 0, 2, 0)
    assert {key: t.pk for key, t in templates_of(tenant_a, channel).items()} == ids


def test_changed_templates_are_updated_and_gone_ones_disabled(tenant_a):
    channel = ChannelFactory(tenant=tenant_a)
    stale = MessageTemplateFactory(
        tenant=tenant_a,
        channel=channel,
        name="follow_up",
        language="en",
        status=MessageTemplate.Status.PENDING,
        body="Old text {{1}}",
    )
    gone = MessageTemplateFactory(tenant=tenant_a, channel=channel, name="summer_sale")
    sent = MessageFactory(
        tenant=tenant_a,
        conversation__channel=channel,
        direction=Message.Direction.OUTBOUND,
        sender_kind=Message.SenderKind.AGENT,
        status=Message.Status.DELIVERED,
        template=gone,
    )

    with tenant_context(tenant_a):
        result = sync_templates(channel=channel)

    templates = templates_of(tenant_a, channel)
    assert (result.created, result.updated, result.disabled) == (1, 1, 1)
    assert templates[("follow_up", "en")].pk == stale.pk
    assert templates[("follow_up", "en")].status == MessageTemplate.Status.APPROVED
    assert templates[("follow_up", "en")].body.startswith("Hello {{1}}")
    disabled = templates[("summer_sale", "en")]
    assert disabled.status == MessageTemplate.Status.DISABLED
    assert disabled.rejection_reason == GONE_REASON
    with tenant_context(tenant_a):
        sent.refresh_from_db()
    assert sent.template_id == gone.pk  # the message still points at its template


def test_templates_of_another_channel_are_left_alone(tenant_a):
    channel = ChannelFactory(tenant=tenant_a)
    other = MessageTemplateFactory(tenant=tenant_a, name="other_channel_template")

    with tenant_context(tenant_a):
        sync_templates(channel=channel)
        other.refresh_from_db()

    assert other.status == MessageTemplate.Status.APPROVED


def test_twilio_content_templates_are_synced_through_the_real_client(tenant_a, provider_stub):
    sid, token = provider_stub.twilio_account()
    provider_stub.twilio_content(
        sid,
        friendly_name="order_ready",
        body="Hi {{1}}, order {{2}} is ready.",
        variables={"1": "Ana", "2": "A-42"},
    )
    provider_stub.twilio_content(
        sid,
        friendly_name="promo",
        body="Sale!",
        category="MARKETING",
        status="rejected",
        rejection_reason="Promotional content in a utility template",
    )
    channel = ChannelFactory(
        tenant=tenant_a, twilio=True, twilio_account_sid=sid, twilio_auth_token=token
    )

    with tenant_context(tenant_a):
        result = sync_templates(channel=channel)

    templates = templates_of(tenant_a, channel)
    assert result.created == 2
    ready = templates[("order_ready", "en")]
    assert ready.status == MessageTemplate.Status.APPROVED
    assert ready.variables == ["1", "2"]
    assert ready.provider_template_id.startswith("HX")
    promo = templates[("promo", "en")]
    assert promo.status == MessageTemplate.Status.REJECTED
    assert promo.category == MessageTemplate.Category.MARKETING
    assert "Promotional" in promo.rejection_reason


def test_meta_templates_are_synced_and_removed_ones_disabled(tenant_a, provider_stub):
    provider_stub.meta_access_token("EAAG-sync")
    provider_stub.meta_template(
        "102290129340398", name="welcome", body="Welcome {{1}}!", language="es"
    )
    channel = ChannelFactory(
        tenant=tenant_a,
        meta=True,
        meta_business_account_id="102290129340398",
        meta_access_token="EAAG-sync",
    )
    MessageTemplateFactory(tenant=tenant_a, channel=channel, name="retired", language="en_US")

    with tenant_context(tenant_a):
        result = sync_templates(channel=channel)

    templates = templates_of(tenant_a, channel)
    assert (result.created, result.disabled) == (1, 1)
    assert templates[("welcome", "es")].variables == ["1"]
    assert templates[("retired", "en_US")].status == MessageTemplate.Status.DISABLED


def test_a_provider_error_leaves_the_templates_untouched(tenant_a, provider_stub):
    channel = ChannelFactory(
        tenant=tenant_a,
        meta=True,
        meta_business_account_id="102290129340398",
        meta_access_token="EAAG-unknown-to-meta",
    )
    kept = MessageTemplateFactory(tenant=tenant_a, channel=channel)

    with tenant_context(tenant_a), pytest.raises(ProviderError):
        sync_templates(channel=channel)

    with tenant_context(tenant_a):
        kept.refresh_from_db()
        channel.refresh_from_db()
    assert kept.status == MessageTemplate.Status.APPROVED
    assert channel.templates_synced_at is None


def test_the_task_syncs_and_records_a_failure_on_the_health_panel(tenant_a, provider_stub):
    sandbox = ChannelFactory(tenant=tenant_a)
    broken = ChannelFactory(tenant=tenant_a, meta=True, meta_access_token="EAAG-unknown")

    assert sync_templates_task(tenant_a.pk, sandbox.pk)["created"] == 2
    assert sync_templates_task(tenant_a.pk, sandbox.pk)["unchanged"] == 2  # safe to run twice
    assert sync_templates_task(tenant_a.pk, broken.pk) is None
    assert sync_templates_task(tenant_a.pk, 999_999) is None  # deleted meanwhile

    with tenant_context(tenant_a):
        broken = Channel.objects.get(pk=broken.pk)
    assert broken.last_error.startswith("Template sync failed:")


def test_the_sync_button_lists_the_templates_with_their_status(client, tenant_a, owner_a):
    channel = ChannelFactory(tenant=tenant_a)
    MessageTemplateFactory(
        tenant=tenant_a, channel=channel, name="old_offer", status=MessageTemplate.Status.APPROVED
    )
    client.force_login(owner_a)
    kwargs = {"tenant_slug": tenant_a.slug, "channel_id": channel.pk}

    response = client.post(reverse("channels:channel_sync_templates", kwargs=kwargs), follow=True)

    html = response.content.decode()
    assert "Templates synced: 2 at the provider (2 new, 0 changed); 1 no longer there" in html
    assert "appointment_reminder" in html and "follow_up" in html
    assert 'class="badge badge-template-approved"' in html
    assert 'class="badge badge-template-disabled"' in html


def test_the_sync_button_explains_a_provider_error(client, tenant_a, owner_a, provider_stub):
    channel = ChannelFactory(tenant=tenant_a, meta=True, meta_access_token="EAAG-unknown")
    client.force_login(owner_a)
    kwargs = {"tenant_slug": tenant_a.slug, "channel_id": channel.pk}

    response = client.post(reverse("channels:channel_sync_templates", kwargs=kwargs), follow=True)

    assert "Templates could not be synced:" in response.content.decode()
