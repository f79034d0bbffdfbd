"""`send_message`: the one way out. Gate, WhatsApp window, validation, idempotency (P1, P2)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from channels_app.models import Conversation, Medium, Message, MessageTemplate
from channels_app.services.delivery import Delivery, deliver
from channels_app.services.sending import (
    InvalidMessage,
    SendRefused,
    send_message,
    send_to_contact,
)
from privacy.gate import COMPLIANCE
from privacy.models import ConsentAction, ConsentSource, Purpose
from privacy.services import record_consent
from tenants.context import tenant_context
from tests.channels.sending_support import (
    conversation_on,
    customer_sends,
    grant,
    reload,
)
from tests.factories import ChannelFactory, ContactFactory, MessageTemplateFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("delivery_settings")]

AGENT = Message.SenderKind.AGENT


@pytest.fixture
def channel(tenant_a):
    return ChannelFactory(tenant=tenant_a)  # the sandbox: WhatsApp rules, no HTTP


@pytest.fixture
def active(tenant_a):
    with tenant_context(tenant_a):
        yield tenant_a


def reply(conversation, body="Your order is ready.", **kwargs):
    kwargs.setdefault("purpose", Purpose.TRANSACTIONAL)
    kwargs.setdefault("sender_kind", AGENT)
    return send_message(conversation=conversation, body=body, **kwargs)


def outbound(conversation):
    return list(
        Message.objects.filter(conversation=conversation, direction=Message.Direction.OUTBOUND)
    )


# --- the gate -------------------------------------------------------------------------------


def test_a_reply_within_the_window_is_queued_and_delivery_enqueued_after_commit(
    channel, active, django_capture_on_commit_callbacks
):
    conversation = conversation_on(channel)

    with django_capture_on_commit_callbacks() as callbacks:
        message = reply(conversation, "Your order is ready.")

    assert message.status == Message.Status.QUEUED
    assert message.direction == Message.Direction.OUTBOUND
    assert message.purpose == Purpose.TRANSACTIONAL
    assert message.idempotency_key  # generated: delivery relies on one
    assert len(callbacks) == 1
    conversation.refresh_from_db()
    assert conversation.last_message_preview == "Your order is ready."
    assert conversation.last_message_at == message.created_at


def test_the_enqueued_task_delivers_the_message(
    channel, active, django_capture_on_commit_callbacks
):
    conversation = conversation_on(channel)

    with django_capture_on_commit_callbacks(execute=True):
        message = reply(conversation)

    message.refresh_from_db()
    assert message.status == Message.Status.SENT
    assert message.provider_message_id.startswith("sbx-out-")
    assert message.attempts == 1
    assert message.sent_at is not None


def test_an_opted_out_contact_is_refused_with_the_reason(channel, active):
    conversation = conversation_on(channel)
    customer_sends(conversation, "STOP")
    before = len(outbound(conversation))  # the one confirmation of the STOP

    with pytest.raises(SendRefused) as refused:
        reply(conversation, "Did you get our offer?")

    assert refused.value.reason == "opted_out"
    assert "opted out" in refused.value.detail
    assert len(outbound(conversation)) == before


def test_marketing_without_marketing_consent_is_refused(channel, active):
    conversation = conversation_on(channel)  # wrote a moment ago: a reply is fine, an ad is not
    grant(conversation.contact, Purpose.TRANSACTIONAL)

    with pytest.raises(SendRefused) as refused:
        reply(conversation, "20% off this week!", purpose=Purpose.MARKETING)

    assert refused.value.reason == "no_marketing_consent"
    assert outbound(conversation) == []


def test_marketing_with_consent_is_queued(channel, active):
    conversation = conversation_on(channel)
    grant(conversation.contact, Purpose.MARKETING)

    message = reply(conversation, "20% off this week!", purpose=Purpose.MARKETING)

    assert message.status == Message.Status.QUEUED
    assert message.purpose == Purpose.MARKETING


def test_a_marketing_template_needs_marketing_consent_whatever_the_caller_says(channel, active):
    conversation = conversation_on(channel, wrote_ago=timedelta(days=3))
    grant(conversation.contact, Purpose.TRANSACTIONAL)
    promo = MessageTemplateFactory(
        tenant=channel.tenant,
        channel=channel,
        category=MessageTemplate.Category.MARKETING,
        body="Hi {{1}}, our sale starts today.",
        variables=["1"],
    )

    with pytest.raises(SendRefused) as refused:
        reply(conversation, "", template=promo, variables=["Ana"])
    assert refused.value.reason == "no_marketing_consent"

    grant(conversation.contact, Purpose.MARKETING)
    message = reply(conversation, "", template=promo, variables=["Ana"])
    assert message.purpose == Purpose.MARKETING


def test_no_consent_and_no_recent_message_is_refused(channel, active):
    conversation = conversation_on(channel, wrote_ago=None)

    with pytest.raises(SendRefused) as refused:
        reply(conversation)

    assert refused.value.reason == "no_consent"


def test_compliance_messages_are_only_for_the_system(channel, active):
    conversation = conversation_on(channel)
    customer_sends(conversation, "STOP")

    with pytest.raises(InvalidMessage) as invalid:
        reply(conversation, "One more thing...", purpose=COMPLIANCE)

    assert invalid.value.reason == "invalid_purpose"


# --- the WhatsApp window --------------------------------------------------------------------


def test_outside_the_window_free_text_is_refused_and_says_a_template_is_needed(channel, active):
    conversation = conversation_on(channel, wrote_ago=timedelta(hours=25))
    grant(conversation.contact, Purpose.TRANSACTIONAL)

    with pytest.raises(SendRefused) as refused:
        reply(conversation, "Are you still interested?")

    assert refused.value.reason == "outside_window"
    assert "24 hours" in refused.value.detail
    assert "template" in refused.value.detail
    assert outbound(conversation) == []


def test_a_customer_who_never_wrote_needs_a_template_too(channel, active):
    conversation = conversation_on(channel, wrote_ago=None)
    grant(conversation.contact, Purpose.TRANSACTIONAL)

    with pytest.raises(SendRefused) as refused:
        reply(conversation, "Hello!")

    assert refused.value.reason == "outside_window"
    assert "template" in refused.value.detail


def test_outside_the_window_an_approved_template_goes_with_its_variables_filled(channel, active):
    conversation = conversation_on(channel, wrote_ago=timedelta(days=2))
    grant(conversation.contact, Purpose.TRANSACTIONAL)
    template = MessageTemplateFactory(tenant=channel.tenant, channel=channel)

    message = reply(conversation, "", template=template, variables={"1": "Ana", "2": "A-42"})

    assert message.status == Message.Status.QUEUED
    assert message.template == template
    assert message.template_variables == {"1": "Ana", "2": "A-42"}
    assert message.body == "Hello Ana, your order A-42 is ready."
    conversation.refresh_from_db()
    assert conversation.last_message_preview == "Hello Ana, your order A-42 is ready."
    assert deliver(message.pk).outcome == Delivery.SENT


def test_sms_has_no_window(active, sms_channel):
    conversation = conversation_on(sms_channel, wrote_ago=None)
    grant(conversation.contact, Purpose.TRANSACTIONAL, medium=Medium.SMS)

    message = reply(conversation, "Your appointment is tomorrow at 10:00.")

    assert message.status == Message.Status.QUEUED


# --- templates ------------------------------------------------------------------------------


def test_named_variables_and_a_list_for_positional_ones(channel, active):
    conversation = conversation_on(channel)
    named = MessageTemplateFactory(
        tenant=channel.tenant,
        channel=channel,
        body="Hi {{first_name}}, see you on {{day}}.",
        variables=["first_name", "day"],
    )
    positional = MessageTemplateFactory(tenant=channel.tenant, channel=channel)

    one = reply(conversation, "", template=named, variables={"first_name": "Ana", "day": "Monday"})
    two = reply(conversation, "", template=positional, variables=["Ana", 42])

    assert one.body == "Hi Ana, see you on Monday."
    assert two.body == "Hello Ana, your order 42 is ready."
    assert two.template_variables == {"1": "Ana", "2": "42"}


@pytest.mark.parametrize(
    ("variables", "words"),
    [
        ({"1": "Ana"}, "needs a value for {{2}}"),
        ({}, "needs values for {{1}}, {{2}}"),
        ({"1": "Ana", "2": "  "}, "needs a value for {{2}}"),
        ({"1": "Ana", "2": "A-42", "3": "extra"}, "{{3}} is not a variable"),
        ({"1": "Ana", "2": "line\nbreak"}, "line break"),
        ({"1": "Ana", "2": ["not", "text"]}, "must be text"),
    ],
)
def test_bad_template_variables_are_named(channel, active, variables, words):
    conversation = conversation_on(channel)
    template = MessageTemplateFactory(tenant=channel.tenant, channel=channel)

    with pytest.raises(InvalidMessage) as invalid:
        reply(conversation, "", template=template, variables=variables)

    assert invalid.value.reason == "template_variables"
    assert words in invalid.value.detail
    assert outbound(conversation) == []


def test_a_template_that_is_not_approved_is_refused(channel, active):
    conversation = conversation_on(channel)
    template = MessageTemplateFactory(
        tenant=channel.tenant, channel=channel, status=MessageTemplate.Status.PENDING
    )

    with pytest.raises(InvalidMessage) as invalid:
        reply(conversation, "", template=template, variables=["Ana", "1"])

    assert invalid.value.reason == "template_not_approved"
    assert "not approved" in invalid.value.detail


def test_a_template_of_another_channel_is_refused(channel, active):
    conversation = conversation_on(channel)
    other = MessageTemplateFactory(
        tenant=channel.tenant, channel=ChannelFactory(tenant=channel.tenant)
    )

    with pytest.raises(InvalidMessage) as invalid:
        reply(conversation, "", template=other, variables=["Ana", "1"])

    assert invalid.value.reason == "template_other_channel"


def test_text_and_template_together_is_refused(channel, active):
    conversation = conversation_on(channel)
    template = MessageTemplateFactory(tenant=channel.tenant, channel=channel)

    with pytest.raises(InvalidMessage) as invalid:
        reply(conversation, "my own words", template=template, variables=["Ana", "1"])

    assert invalid.value.reason == "body_with_template"


# --- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize("body", ["", "   \n "])
def test_an_empty_message_is_refused(channel, active, body):
    conversation = conversation_on(channel)

    with pytest.raises(InvalidMessage) as invalid:
        reply(conversation, body)

    assert invalid.value.reason == "empty"
    assert invalid.value.field == "body"


def test_media_without_text_is_fine_and_previewed(channel, active):
    conversation = conversation_on(channel)

    message = reply(
        conversation,
        "",
        media=[{"url": "https://files.example.com/menu.pdf", "content_type": "application/pdf"}],
    )

    assert message.media == [
        {"url": "https://files.example.com/menu.pdf", "content_type": "application/pdf"}
    ]
    conversation.refresh_from_db()
    assert conversation.last_message_preview == "Attachment: menu.pdf"


@pytest.mark.parametrize(
    "media",
    [
        [{"url": "file:///etc/passwd"}],
        [{"content_type": "image/png"}],
        ["https://files.example.com/a.png"],
        [{"url": "https://a.example/1.png"}, {"url": "https://a.example/2.png"}],  # WhatsApp: 1
        "https://files.example.com/a.png",
    ],
)
def test_bad_attachments_are_refused(channel, active, media):
    conversation = conversation_on(channel)

    with pytest.raises(InvalidMessage) as invalid:
        reply(conversation, "See attached", media=media)

    assert invalid.value.reason in {"invalid_media", "too_many_media"}


def test_whatsapp_text_is_limited_to_4096_characters(channel, active):
    conversation = conversation_on(channel)

    assert reply(conversation, "x" * 4096).status == Message.Status.QUEUED
    with pytest.raises(InvalidMessage) as invalid:
        reply(conversation, "x" * 4097)

    assert invalid.value.reason == "too_long"
    assert "4097" in invalid.value.detail and "4096" in invalid.value.detail


def test_sms_text_is_limited_to_1600_characters(active, sms_channel):
    conversation = conversation_on(sms_channel)

    with pytest.raises(InvalidMessage) as invalid:
        reply(conversation, "x" * 1601)

    assert invalid.value.reason == "too_long"
    assert "1600" in invalid.value.detail


def test_a_nul_character_is_refused(channel, active):
    conversation = conversation_on(channel)

    with pytest.raises(InvalidMessage) as invalid:
        reply(conversation, "hello\x00world")

    assert invalid.value.reason == "invalid_body"


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"purpose": "newsletter"}, "invalid_purpose"),
        ({"sender_kind": "customer"}, "invalid_sender_kind"),
        ({"idempotency_key": "k" * 129}, "idempotency_key_too_long"),
        ({"variables": {"1": "x"}}, "variables_without_template"),
    ],
)
def test_bad_arguments_are_refused_with_a_reason(channel, active, kwargs, reason):
    conversation = conversation_on(channel)

    with pytest.raises(InvalidMessage) as invalid:
        reply(conversation, **kwargs)

    assert invalid.value.reason == reason


def test_an_invalid_message_is_a_validation_error_a_form_can_show(channel, active):
    from django import forms

    conversation = conversation_on(channel)
    form = forms.Form(data={})
    form.is_valid()
    try:
        reply(conversation, "")
    except InvalidMessage as exc:
        form.add_error(None, exc)

    assert form.non_field_errors() == ["Write a message, attach a file or choose a template."]


# --- idempotency ----------------------------------------------------------------------------


def test_the_same_idempotency_key_twice_queues_one_message(
    channel, active, django_capture_on_commit_callbacks
):
    conversation = conversation_on(channel)

    with django_capture_on_commit_callbacks() as callbacks:
        first = reply(conversation, "Hi!", idempotency_key="agent-click-1")
        second = reply(conversation, "Hi!", idempotency_key="agent-click-1")

    assert first.pk == second.pk
    assert len(outbound(conversation)) == 1
    assert len(callbacks) == 1


def test_an_idempotency_key_of_another_conversation_is_refused(channel, active):
    reply(conversation_on(channel), "Hi!", idempotency_key="shared-key")

    with pytest.raises(InvalidMessage) as invalid:
        reply(conversation_on(channel), "Hi!", idempotency_key="shared-key")

    assert invalid.value.reason == "idempotency_key_reused"


def test_idempotency_keys_are_per_business(channel, active, tenant_b):
    reply(conversation_on(channel), "Hi!", idempotency_key="same-key")
    other_channel = ChannelFactory(tenant=tenant_b)

    with tenant_context(tenant_b):
        message = reply(conversation_on(other_channel), "Hi!", idempotency_key="same-key")

    assert message.tenant_id == tenant_b.pk


# --- send_to_contact ------------------------------------------------------------------------


def test_send_to_contact_opens_the_conversation(channel, active):
    contact = ContactFactory(tenant=channel.tenant)
    grant(contact, Purpose.TRANSACTIONAL)
    template = MessageTemplateFactory(tenant=channel.tenant, channel=channel)

    message = send_to_contact(
        contact=contact,
        channel=channel,
        template=template,
        variables=["Ana", "A-1"],
        purpose=Purpose.TRANSACTIONAL,
        sender_kind=Message.SenderKind.AUTOMATION,
    )
    again = send_to_contact(
        contact=contact,
        channel=channel,
        template=template,
        variables=["Ana", "A-2"],
        purpose=Purpose.TRANSACTIONAL,
        sender_kind=Message.SenderKind.AUTOMATION,
    )

    assert message.conversation.contact == contact
    assert again.conversation_id == message.conversation_id
    assert Conversation.objects.filter(contact=contact).count() == 1


def test_a_refused_send_to_contact_leaves_no_empty_conversation(channel, active):
    contact = ContactFactory(tenant=channel.tenant)  # no consent, never wrote

    with pytest.raises(SendRefused):
        send_to_contact(
            contact=contact,
            channel=channel,
            body="Hello",
            purpose=Purpose.MARKETING,
            sender_kind=Message.SenderKind.CAMPAIGN,
        )

    assert not Conversation.objects.filter(contact=contact).exists()


# --- the opt-out machinery sends through it too ---------------------------------------------


def test_the_stop_confirmation_is_sent_and_delivered_to_the_opted_out_customer(channel, active):
    conversation = conversation_on(channel)

    customer_sends(conversation, "STOP")

    (confirmation,) = outbound(conversation)
    assert confirmation.purpose == COMPLIANCE
    assert confirmation.sender_kind == Message.SenderKind.SYSTEM
    assert deliver(confirmation.pk).outcome == Delivery.SENT
    assert reload(confirmation).status == Message.Status.SENT


def test_a_withdrawn_consent_recorded_by_the_team_refuses_too(channel, active):
    conversation = conversation_on(channel)
    record_consent(
        contact=conversation.contact,
        media=[Medium.WHATSAPP],
        purposes=[Purpose.TRANSACTIONAL, Purpose.MARKETING],
        action=ConsentAction.WITHDRAWN,
        source=ConsentSource.AGENT,
    )

    with pytest.raises(SendRefused) as refused:
        reply(conversation)

    assert refused.value.reason == "opted_out"


def test_an_inactive_channel_refuses(channel, active):
    conversation = conversation_on(channel)
    channel.is_active = False
    channel.save()
    conversation.refresh_from_db()

    with pytest.raises(SendRefused) as refused:
        reply(conversation)

    assert refused.value.reason == "channel_inactive"


def test_window_edge_is_24_hours(channel, active):
    conversation = conversation_on(channel, wrote_ago=timedelta(hours=23, minutes=59))
    assert reply(conversation).status == Message.Status.QUEUED

    conversation.last_inbound_at = timezone.now() - timedelta(hours=24, seconds=1)
    conversation.save()
    grant(conversation.contact, Purpose.TRANSACTIONAL)
    with pytest.raises(SendRefused):
        reply(conversation)
