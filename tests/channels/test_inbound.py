"""The inbound pipeline: statuses late and out of order, opt-out keywords, reopening
conversations and the follow-up work that starts only once a message is stored."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from channels_app.models import Conversation, Message, MessageStatusEvent
from channels_app.providers.sandbox import signed_request
from channels_app.services import inbound
from channels_app.services.inbound import (
    apply_pending_status_events,
    receive_webhook,
    register_follow_up,
)
from channels_app.tasks import process_inbound
from crm.models import Contact
from privacy.gate import can_message
from privacy.models import ConsentAction, ConsentEvent, ConsentSource, MessagingPolicy, Purpose
from tenants.context import tenant_context
from tests.factories import ChannelFactory, ContactFactory, ConversationFactory, MessageFactory
from tests.fakes import meta_status
from tests.fakes.webhooks import FORM, encode_form, twilio_status_callback

pytestmark = pytest.mark.django_db

CUSTOMER = "+14155550123"


@pytest.fixture
def channel(tenant_a):
    channel = ChannelFactory(tenant=tenant_a)
    with tenant_context(tenant_a):
        yield channel


@pytest.fixture
def followed():
    """A follow-up handler that notes the messages it was given (a stand-in for the bot)."""
    seen: list[int] = []

    def note(message):
        seen.append(message.pk)

    register_follow_up(note)
    yield seen
    inbound.unregister_follow_up(note)


_counter = iter(range(1, 10**6))


def customer_writes(channel, body: str, *, phone=CUSTOMER, message_id=None):
    message_id = message_id or f"sbx-in-{next(_counter)}"
    event = {"type": "message", "id": message_id, "from": phone, "body": body}
    return receive_webhook(channel=channel, request=signed_request(channel, [event]))


def provider_reports(channel, provider_message_id: str, *statuses: str):
    events = [{"type": "status", "id": provider_message_id, "status": s} for s in statuses]
    return receive_webhook(channel=channel, request=signed_request(channel, events))


def sent_message(channel, provider_message_id="sbx-out-1", status=Message.Status.SENT):
    return MessageFactory(
        tenant=channel.tenant,
        conversation__channel=channel,
        direction=Message.Direction.OUTBOUND,
        sender_kind=Message.SenderKind.AGENT,
        status=status,
        provider_message_id=provider_message_id,
    )


def replies(contact):
    return list(
        Message.objects.filter(
            conversation__contact=contact, direction=Message.Direction.OUTBOUND
        ).order_by("id")
    )


def the_contact(phone=CUSTOMER):
    return Contact.objects.get(phone=phone)


# --- statuses ----------------------------------------------------------------------------------


def test_a_status_for_a_message_we_do_not_know_is_kept_for_later(channel):
    outcome = provider_reports(channel, "sbx-out-unknown", "delivered")

    assert outcome.ok and outcome.accepted == 1 and outcome.statuses_unmatched == 1
    event = MessageStatusEvent.objects.get()
    assert (event.message, event.applied, event.status) == (None, False, "delivered")


def test_statuses_that_came_before_the_provider_id_apply_once_it_is_recorded(channel):
    provider_reports(channel, "sbx-out-early", "sent")
    provider_reports(channel, "sbx-out-early", "delivered")
    message = sent_message(channel, provider_message_id="", status=Message.Status.SENDING)

    # Delivery records the provider id, then applies what was waiting for it.
    Message.objects.filter(pk=message.pk).update(provider_message_id="sbx-out-early")
    message.provider_message_id = "sbx-out-early"
    assert apply_pending_status_events(message) == 2

    assert message.status == Message.Status.DELIVERED
    message.refresh_from_db()
    assert message.status == Message.Status.DELIVERED
    assert message.sent_at and message.delivered_at
    events = MessageStatusEvent.objects.all()
    assert all(e.applied and e.message_id == message.pk for e in events)
    assert apply_pending_status_events(message) == 0


def test_a_late_sent_never_undoes_delivered(channel):
    message = sent_message(channel)
    provider_reports(channel, message.provider_message_id, "delivered")
    provider_reports(channel, message.provider_message_id, "sent")

    message.refresh_from_db()
    assert message.status == Message.Status.DELIVERED
    assert MessageStatusEvent.objects.count() == 2  # every report is kept


def test_read_after_failed_stays_failed(channel):
    message = sent_message(channel)
    provider_reports(channel, message.provider_message_id, "failed", "read")

    message.refresh_from_db()
    assert message.status == Message.Status.FAILED
    assert sorted(MessageStatusEvent.objects.values_list("provider_status", flat=True)) == [
        "failed",
        "read",
    ]


def test_every_status_event_is_kept_and_repeats_are_one_event(channel):
    message = sent_message(channel)
    provider_reports(channel, message.provider_message_id, "sent", "delivered", "read")
    again = provider_reports(channel, message.provider_message_id, "delivered")

    assert again.ok and again.duplicates == 1 and again.accepted == 0
    assert MessageStatusEvent.objects.filter(message=message).count() == 3
    message.refresh_from_db()
    assert message.status == Message.Status.READ


def test_each_status_stamps_its_time_once(channel):
    message = sent_message(channel, status=Message.Status.ACCEPTED)
    provider_reports(channel, message.provider_message_id, "sent")
    message.refresh_from_db()
    sent_at = message.sent_at
    assert message.status == Message.Status.SENT and sent_at is not None

    provider_reports(channel, message.provider_message_id, "delivered")
    provider_reports(channel, message.provider_message_id, "sent")  # repeated: one event
    provider_reports(channel, message.provider_message_id, "read")

    message.refresh_from_db()
    assert message.status == Message.Status.READ
    assert message.sent_at == sent_at
    assert message.delivered_at and message.read_at
    assert message.status_changed_at >= message.read_at


def test_a_failure_after_read_is_kept_with_its_reason_and_ends_the_message(channel):
    message = sent_message(channel, status=Message.Status.READ)
    events = [{"type": "status", "id": message.provider_message_id, "status": "failed"}]
    outcome = receive_webhook(channel=channel, request=signed_request(channel, events))

    assert outcome.accepted == 1 and outcome.statuses_applied == 1
    provider_reports(channel, message.provider_message_id, "delivered")
    message.refresh_from_db()
    assert message.status == Message.Status.FAILED  # terminal: nothing moves it again


def test_a_status_for_another_channels_message_is_not_applied(channel, tenant_a):
    other = ChannelFactory(tenant=tenant_a)
    message = sent_message(other, provider_message_id="sbx-out-other")
    outcome = provider_reports(channel, "sbx-out-other", "delivered")

    assert outcome.statuses_unmatched == 1
    message.refresh_from_db()
    assert message.status == Message.Status.SENT
    event = MessageStatusEvent.objects.get()
    assert (event.channel_id, event.message_id, event.applied) == (channel.pk, None, False)


def test_a_meta_stopped_marketing_failure_records_a_marketing_opt_out_only(tenant_a, client):
    channel = ChannelFactory(tenant=tenant_a, meta=True)
    message = sent_message(channel, provider_message_id="wamid.MKT1")
    body, headers = meta_status(
        channel.meta_app_secret,
        message_id="wamid.MKT1",
        status="failed",
        recipient=CUSTOMER,
        errors=[{"code": 131050, "title": "User has stopped marketing messages"}],
        phone_number_id=channel.meta_phone_number_id,
    )
    path = reverse("hook_meta", kwargs={"token": channel.webhook_token})
    response = client.post(path, body, content_type="application/json", headers=headers)

    assert response.status_code == 200
    with tenant_context(tenant_a):
        message.refresh_from_db()
        assert (message.status, message.error_code) == (Message.Status.FAILED, "131050")
        contact = message.conversation.contact
        assert can_message(contact, channel, Purpose.MARKETING).reason == "marketing_withdrawn"
        assert not ConsentEvent.objects.filter(purpose=Purpose.TRANSACTIONAL).exists()


def test_an_unsubscribed_failure_records_the_opt_out(tenant_a, client):
    channel = ChannelFactory(tenant=tenant_a, twilio_sms=True)
    message = sent_message(channel, provider_message_id="SM" + "d" * 32)
    path = reverse("hook_twilio_status", kwargs={"token": channel.webhook_token})
    params, headers = twilio_status_callback(
        settings.PUBLIC_BASE_URL + path,
        channel.twilio_auth_token,
        message_sid=message.provider_message_id,
        status="failed",
        error_code=21610,
        channel="sms",
        account_sid=channel.twilio_account_sid,
    )
    response = client.post(path, encode_form(params), content_type=FORM, headers=headers)

    assert response.status_code == 200
    with tenant_context(tenant_a):
        contact = message.conversation.contact
        assert can_message(contact, channel, Purpose.TRANSACTIONAL).reason == "opted_out"
        event = ConsentEvent.objects.get(contact=contact, purpose=Purpose.TRANSACTIONAL)
        assert event.source == ConsentSource.PROVIDER


# --- keywords ----------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["STOP", "stop!", "Stop.", "  OPTOUT ", "unsubscribe"])
def test_an_opt_out_keyword_takes_effect_at_once_with_one_confirmation(channel, followed, text):
    outcome = customer_writes(channel, text)

    assert outcome.ok and outcome.keywords == 1 and outcome.message_ids == []
    contact = the_contact()
    assert can_message(contact, channel, Purpose.TRANSACTIONAL).reason == "opted_out"
    assert can_message(contact, channel, Purpose.MARKETING).reason == "opted_out"
    (confirmation,) = replies(contact)
    assert confirmation.sender_kind == Message.SenderKind.SYSTEM
    assert "unsubscribed" in confirmation.body
    assert followed == []  # the bot never sees it


def test_a_businesss_own_opt_out_word_works_too(channel):
    MessagingPolicy.objects.create(extra_opt_out_keywords="BASTA, no más")
    outcome = customer_writes(channel, "Basta")

    assert outcome.keywords == 1
    assert can_message(the_contact(), channel, Purpose.TRANSACTIONAL).reason == "opted_out"
    assert len(replies(the_contact())) == 1


def test_a_retried_stop_webhook_confirms_once(channel):
    customer_writes(channel, "STOP", message_id="sbx-in-stop")
    again = customer_writes(channel, "STOP", message_id="sbx-in-stop")

    assert again.duplicates == 1
    assert len(replies(the_contact())) == 1
    assert ConsentEvent.objects.filter(action=ConsentAction.WITHDRAWN).count() == 2


def test_start_restores_what_stop_took_away(channel):
    customer_writes(channel, "STOP")
    customer_writes(channel, "START")

    contact = the_contact()
    assert can_message(contact, channel, Purpose.TRANSACTIONAL).allowed
    assert len(replies(contact)) == 2


def test_help_answers_with_the_businesss_help_text(channel):
    MessagingPolicy.objects.create(help_reply="Alpha Dental: call us on +1 415 555 0100.")
    outcome = customer_writes(channel, "help")

    assert outcome.keywords == 1
    (answer,) = replies(the_contact())
    assert answer.body == "Alpha Dental: call us on +1 415 555 0100."
    assert can_message(the_contact(), channel, Purpose.TRANSACTIONAL).allowed


def test_a_sentence_with_stop_in_it_is_an_ordinary_message(channel, followed):
    outcome = customer_writes(channel, "please stop calling me after 6pm")

    assert outcome.keywords == 0 and len(outcome.message_ids) == 1
    assert not ConsentEvent.objects.exists()
    assert replies(the_contact()) == []


# --- conversations and follow-ups --------------------------------------------------------------


def test_a_message_reopens_a_resolved_conversation(channel):
    contact = ContactFactory(tenant=channel.tenant, phone=CUSTOMER)
    conversation = ConversationFactory(
        tenant=channel.tenant,
        channel=channel,
        contact=contact,
        status=Conversation.Status.RESOLVED,
        resolved_at=timezone.now(),
        unread_count=0,
    )
    customer_writes(channel, "One more question")

    conversation.refresh_from_db()
    assert conversation.status == Conversation.Status.OPEN
    assert conversation.resolved_at is None
    assert conversation.unread_count == 1
    assert conversation.last_message_preview == "One more question"
    assert Conversation.objects.count() == 1


def test_a_pending_conversation_stays_pending(channel):
    contact = ContactFactory(tenant=channel.tenant, phone=CUSTOMER)
    conversation = ConversationFactory(
        tenant=channel.tenant, channel=channel, contact=contact, status=Conversation.Status.PENDING
    )
    customer_writes(channel, "Any news?")
    conversation.refresh_from_db()
    assert conversation.status == Conversation.Status.PENDING


def test_follow_up_work_starts_only_after_the_message_is_committed(
    channel, followed, eager_celery, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        outcome = customer_writes(channel, "I'd like to book a cleaning")
    assert followed == []  # nothing ran inside the transaction
    assert len(callbacks) == 1

    callbacks[0]()
    assert followed == outcome.message_ids


def test_follow_up_work_can_run_twice_and_skips_erased_messages(channel, followed):
    message = MessageFactory(tenant=channel.tenant, conversation__channel=channel)

    process_inbound.apply(args=[channel.tenant_id, message.pk])
    process_inbound.apply(args=[channel.tenant_id, message.pk])
    assert followed == [message.pk, message.pk]

    message_id = message.pk
    message.delete()
    process_inbound.apply(args=[channel.tenant_id, message_id])
    assert followed == [message_id, message_id]


def test_receiving_needs_the_channels_own_tenant(tenant_b, tenant_a):
    channel = ChannelFactory(tenant=tenant_a)
    with tenant_context(tenant_b), pytest.raises(ValueError):
        customer_writes(channel, "Hi")


def test_follow_ups_run_in_order_and_a_consuming_handler_stops_the_later_ones(
    channel, eager_celery, django_capture_on_commit_callbacks
):
    calls: list[str] = []

    def bot(message):
        calls.append("bot")

    def appointment_reply(message):
        calls.append("reply")
        return message.body == "C"

    register_follow_up(bot, order=inbound.ORDER_BOT)
    register_follow_up(appointment_reply, order=inbound.ORDER_REPLIES)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            customer_writes(channel, "what time do you open?")
        assert calls == ["reply", "bot"]
        calls.clear()
        with django_capture_on_commit_callbacks(execute=True):
            customer_writes(channel, "C")
        assert calls == ["reply"]
    finally:
        inbound.unregister_follow_up(bot)
        inbound.unregister_follow_up(appointment_reply)
