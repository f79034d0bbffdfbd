"""Delivery through the real Twilio and Meta adapters against the local provider stub:
never twice, retried when transient, failed in words when permanent (P1, P2)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from channels_app.models import Channel, Medium, Message
from channels_app.providers import twilio as twilio_module
from channels_app.providers.base import provider_for
from channels_app.services import delivery
from channels_app.services.delivery import Delivery, deliver, recover_stuck_messages
from channels_app.services.sending import send_message
from privacy.gate import can_message
from privacy.models import ConsentAction, ConsentEvent, ConsentSource, Purpose
from tenants.context import tenant_context
from tests.channels.sending_support import (
    conversation_on,
    customer_sends,
    grant,
    reload,
)
from tests.factories import ChannelFactory, MessageTemplateFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("delivery_settings")]


@pytest.fixture
def active(tenant_a):
    with tenant_context(tenant_a):
        yield tenant_a


def queue(conversation, body="Your order is ready.", **kwargs):
    kwargs.setdefault("purpose", Purpose.TRANSACTIONAL)
    kwargs.setdefault("sender_kind", Message.SenderKind.AGENT)
    return send_message(conversation=conversation, body=body, **kwargs)


def twilio_sends(stub):
    return stub.sends("twilio")


# --- once and only once ---------------------------------------------------------------------


def test_a_queued_message_is_sent_through_twilio(active, twilio_channel, provider_stub):
    conversation = conversation_on(twilio_channel)
    message = queue(conversation, "Hello from the clinic")

    result = deliver(message.pk)

    assert result.outcome == Delivery.SENT
    (sent,) = twilio_sends(provider_stub)
    assert sent["Body"] == "Hello from the clinic"
    assert sent["To"] == f"whatsapp:{conversation.contact.phone}"
    assert sent["From"] == "whatsapp:+14155238886"
    assert sent["StatusCallback"].startswith("https://app.example.com/hooks/twilio/")
    message.refresh_from_db()
    assert message.status == Message.Status.ACCEPTED  # Twilio queued it
    assert message.provider_message_id == sent["message_id"]
    assert message.sent_at is not None
    assert message.attempts == 1


def test_delivering_twice_sends_once(active, twilio_channel, provider_stub):
    message = queue(conversation_on(twilio_channel))

    first = deliver(message.pk)
    second = deliver(message.pk)

    assert first.outcome == Delivery.SENT
    assert second.outcome == Delivery.SKIPPED
    assert len(twilio_sends(provider_stub)) == 1
    assert reload(message).attempts == 1


def test_the_same_idempotency_key_twice_reaches_the_provider_once(
    active, twilio_channel, provider_stub, django_capture_on_commit_callbacks
):
    conversation = conversation_on(twilio_channel)

    with django_capture_on_commit_callbacks(execute=True):
        first = queue(conversation, "Booked!", idempotency_key="booking-7")
    with django_capture_on_commit_callbacks(execute=True):
        second = queue(conversation, "Booked!", idempotency_key="booking-7")

    assert first.pk == second.pk
    assert len(twilio_sends(provider_stub)) == 1
    assert reload(first).status == Message.Status.ACCEPTED


def test_a_fresh_claim_of_another_run_is_left_alone(active, twilio_channel, provider_stub):
    message = queue(conversation_on(twilio_channel))
    Message.objects.filter(pk=message.pk).update(
        status=Message.Status.SENDING, status_changed_at=timezone.now()
    )

    assert deliver(message.pk).outcome == Delivery.SKIPPED
    assert twilio_sends(provider_stub) == []
    assert reload(message).status == Message.Status.SENDING


def test_meta_sends_text(active, meta_channel, provider_stub):
    conversation = conversation_on(meta_channel)
    message = queue(conversation, "Hola")

    assert deliver(message.pk).outcome == Delivery.SENT

    (sent,) = provider_stub.sends("meta")
    assert sent["text"]["body"] == "Hola"
    assert sent["to"] == conversation.contact.phone
    assert reload(message).provider_message_id.startswith("wamid.")


def test_sms_goes_without_the_whatsapp_prefix(active, sms_channel, provider_stub):
    conversation = conversation_on(sms_channel, wrote_ago=None)
    grant(conversation.contact, Purpose.TRANSACTIONAL, medium=Medium.SMS)
    message = queue(conversation, "See you tomorrow")

    assert deliver(message.pk).outcome == Delivery.SENT

    (sent,) = twilio_sends(provider_stub)
    assert sent["To"] == conversation.contact.phone
    assert sent["From"] == "+14155550100"


# --- templates, natively --------------------------------------------------------------------


def test_a_twilio_template_goes_as_content_sid_and_variables(active, twilio_channel, provider_stub):
    conversation = conversation_on(twilio_channel, wrote_ago=timedelta(days=3))
    grant(conversation.contact, Purpose.TRANSACTIONAL)
    template = MessageTemplateFactory(tenant=twilio_channel.tenant, channel=twilio_channel)
    message = queue(conversation, "", template=template, variables=["Ana", "A-42"])

    assert deliver(message.pk).outcome == Delivery.SENT

    (sent,) = twilio_sends(provider_stub)
    assert sent["ContentSid"] == template.provider_template_id
    assert json.loads(sent["ContentVariables"]) == {"1": "Ana", "2": "A-42"}
    assert "Body" not in sent
    assert reload(message).body == "Hello Ana, your order A-42 is ready."


def test_a_meta_template_goes_as_components(active, meta_channel, provider_stub):
    conversation = conversation_on(meta_channel, wrote_ago=None)
    grant(conversation.contact, Purpose.TRANSACTIONAL)
    template = MessageTemplateFactory(
        tenant=meta_channel.tenant,
        channel=meta_channel,
        name="order_ready",
        language="en_US",
        provider_template_id="1234567890",
    )
    message = queue(conversation, "", template=template, variables={"1": "Ana", "2": "A-42"})

    assert deliver(message.pk).outcome == Delivery.SENT

    (sent,) = provider_stub.sends("meta")
    assert sent["type"] == "template"
    assert sent["template"]["name"] == "order_ready"
    assert sent["template"]["language"] == {"code": "en_US"}
    assert sent["template"]["components"] == [
        {
            "type": "body",
            "parameters": [{"type": "text", "text": "Ana"}, {"type": "text", "text": "A-42"}],
        }
    ]


# --- transient errors -----------------------------------------------------------------------


def test_a_provider_5xx_is_retried_and_then_sent_once(active, twilio_channel, provider_stub):
    message = queue(conversation_on(twilio_channel))
    provider_stub.fail_next(1, status=500)

    first = deliver(message.pk)

    assert first.outcome == Delivery.RETRY
    assert first.retry_in > 0
    message.refresh_from_db()
    assert message.status == Message.Status.QUEUED
    assert message.attempts == 1
    assert message.error_code == "20500"
    twilio_channel.refresh_from_db()
    assert "will retry" in twilio_channel.last_error
    assert twilio_channel.last_error_at is not None

    second = deliver(message.pk)

    assert second.outcome == Delivery.SENT
    assert len(twilio_sends(provider_stub)) == 1
    message.refresh_from_db()
    assert message.status == Message.Status.ACCEPTED
    assert message.attempts == 2
    assert message.error_code == ""


def test_meta_5xx_then_success(active, meta_channel, provider_stub):
    message = queue(conversation_on(meta_channel))
    provider_stub.fail_next(2, status=500, provider="meta")

    outcomes = [deliver(message.pk).outcome for _ in range(3)]

    assert outcomes == [Delivery.RETRY, Delivery.RETRY, Delivery.SENT]
    assert len(provider_stub.sends("meta")) == 1


def test_transient_errors_give_up_after_the_configured_attempts(
    active, twilio_channel, provider_stub, settings
):
    settings.DELIVERY_MAX_ATTEMPTS = 3
    message = queue(conversation_on(twilio_channel))
    provider_stub.fail_next(10, status=503)

    outcomes = [deliver(message.pk).outcome for _ in range(4)]

    assert outcomes == [Delivery.RETRY, Delivery.RETRY, Delivery.FAILED, Delivery.SKIPPED]
    message.refresh_from_db()
    assert message.status == Message.Status.FAILED
    assert message.attempts == 3
    assert message.error_reason.startswith("Gave up after 3 attempts:")
    assert twilio_sends(provider_stub) == []


def test_backoff_grows_with_jitter_and_respects_retry_after():
    first = [delivery.backoff(1) for _ in range(50)]
    fourth = [delivery.backoff(4) for _ in range(50)]

    assert all(2.5 <= d <= 5 for d in first)
    assert all(20 <= d <= 40 for d in fourth)
    assert len(set(first)) > 1  # jitter
    assert delivery.backoff(1, retry_after=60) == 60
    assert delivery.backoff(30) <= delivery.BACKOFF_MAX_SECONDS


# --- permanent errors -----------------------------------------------------------------------


def test_twilio_21610_fails_with_the_reason_and_records_the_opt_out(
    active, twilio_channel, provider_stub
):
    conversation = conversation_on(twilio_channel)
    grant(conversation.contact, Purpose.TRANSACTIONAL, Purpose.MARKETING)
    message = queue(conversation)
    provider_stub.fail_permanently(code=21610)

    result = deliver(message.pk)

    assert result.outcome == Delivery.FAILED
    message.refresh_from_db()
    assert message.status == Message.Status.FAILED
    assert message.error_code == "21610"
    assert "unsubscribed" in message.error_reason
    event = ConsentEvent.objects.filter(contact=conversation.contact).latest("id")
    assert event.action == ConsentAction.WITHDRAWN
    assert event.source == ConsentSource.PROVIDER
    assert event.message_id == message.pk
    decision = can_message(conversation.contact, twilio_channel, Purpose.TRANSACTIONAL)
    assert not decision.allowed and decision.reason == "opted_out"
    twilio_channel.refresh_from_db()
    assert "unsubscribed" in twilio_channel.last_error
    assert deliver(message.pk).outcome == Delivery.SKIPPED


def test_meta_131050_records_a_marketing_opt_out_only(active, meta_channel, provider_stub):
    conversation = conversation_on(meta_channel)
    grant(conversation.contact, Purpose.TRANSACTIONAL, Purpose.MARKETING)
    message = queue(conversation, "Our sale!", purpose=Purpose.MARKETING)
    provider_stub.fail_permanently(code=131050)

    assert deliver(message.pk).outcome == Delivery.FAILED

    message.refresh_from_db()
    assert message.error_code == "131050"
    assert "stopped marketing" in message.error_reason
    contact = conversation.contact
    assert can_message(contact, meta_channel, Purpose.MARKETING).reason == "marketing_withdrawn"
    assert can_message(contact, meta_channel, Purpose.TRANSACTIONAL).allowed


@pytest.mark.parametrize(
    ("kind", "code", "words"),
    [("twilio", 63016, "24-hour window"), ("meta", 131047, "24 hours")],
)
def test_outside_the_window_at_the_provider_is_failed_with_that_reason(
    active, provider_stub, request, kind, code, words
):
    channel = request.getfixturevalue(f"{kind}_channel")
    message = queue(conversation_on(channel))
    provider_stub.fail_permanently(code=code)

    assert deliver(message.pk).outcome == Delivery.FAILED

    message.refresh_from_db()
    assert message.error_code == str(code)
    assert words in message.error_reason
    assert "template" in message.error_reason


def test_an_invalid_number_is_failed_not_retried(active, twilio_channel, provider_stub):
    message = queue(conversation_on(twilio_channel))
    provider_stub.fail_permanently(code=21211)

    assert deliver(message.pk).outcome == Delivery.FAILED
    assert reload(message).error_reason == "The recipient's phone number is not valid."
    assert reload(message).attempts == 1


# --- the gate again, right before sending (P2: STOP mid-campaign) ---------------------------


def test_stop_between_queue_and_delivery_means_nothing_leaves(
    active, twilio_channel, provider_stub
):
    conversation = conversation_on(twilio_channel)
    grant(conversation.contact, Purpose.MARKETING)
    campaign = [
        queue(conversation, f"Offer {n}", purpose=Purpose.MARKETING, idempotency_key=f"c-{n}")
        for n in range(3)
    ]
    assert deliver(campaign[0].pk).outcome == Delivery.SENT

    customer_sends(conversation, "STOP")
    results = [deliver(message.pk) for message in campaign[1:]]

    assert [r.outcome for r in results] == [Delivery.FAILED, Delivery.FAILED]
    for message in campaign[1:]:
        message.refresh_from_db()
        assert message.status == Message.Status.FAILED
        assert message.error_code == "opted_out"
        assert "opted out before delivery" in message.error_reason
    bodies = [s["Body"] for s in twilio_sends(provider_stub)]
    assert bodies == ["Offer 0"]

    # The one confirmation of the STOP still goes.
    confirmation = Message.objects.get(conversation=conversation, purpose="compliance")
    assert deliver(confirmation.pk).outcome == Delivery.SENT
    assert len(twilio_sends(provider_stub)) == 2


# --- interrupted sends: never twice ---------------------------------------------------------


def _interrupted(message, *, minutes_ago=10):
    """The state a worker killed after the provider call, before the status write, leaves."""
    Message.objects.filter(pk=message.pk).update(
        status=Message.Status.SENDING,
        attempts=1,
        status_changed_at=timezone.now() - timedelta(minutes=minutes_ago),
    )


def test_a_killed_worker_whose_message_reached_twilio_is_adopted_not_resent(
    active, twilio_channel, provider_stub
):
    conversation = conversation_on(twilio_channel)
    message = queue(conversation, "Reached Twilio before the crash")
    provider_for(twilio_channel).send(message, to_phone=conversation.contact.phone)
    _interrupted(message)

    result = deliver(message.pk)

    assert result.outcome == Delivery.SENT
    (sent,) = twilio_sends(provider_stub)
    message.refresh_from_db()
    assert message.provider_message_id == sent["message_id"]
    assert message.status == Message.Status.SENT
    assert deliver(message.pk).outcome == Delivery.SKIPPED
    assert len(twilio_sends(provider_stub)) == 1


def test_a_killed_worker_whose_message_did_not_reach_twilio_is_failed_not_resent(
    active, twilio_channel, provider_stub
):
    message = queue(conversation_on(twilio_channel), "Lost in the crash")
    _interrupted(message)

    result = deliver(message.pk)

    assert result.outcome == Delivery.FAILED
    assert twilio_sends(provider_stub) == []
    message.refresh_from_db()
    assert message.status == Message.Status.FAILED
    assert message.error_code == "delivery_unknown"
    assert "may or may not have reached" in message.error_reason
    assert "not sent again" in message.error_reason


def test_an_interrupted_sandbox_send_is_failed_as_unknown(active, tenant_a):
    channel = ChannelFactory(tenant=tenant_a)
    message = queue(conversation_on(channel))
    _interrupted(message)

    assert deliver(message.pk).outcome == Delivery.FAILED
    assert reload(message).error_code == "delivery_unknown"


def test_a_timeout_after_the_request_left_is_resolved_without_a_second_send(
    active, twilio_channel, provider_stub, monkeypatch
):
    # The lookup that settles the send shares this timeout: a second is room enough for it
    # on a loaded machine, and the held-back answer is well past it.
    monkeypatch.setattr(twilio_module, "READ_TIMEOUT", 1.0)
    conversation = conversation_on(twilio_channel)
    message = queue(conversation, "Slow provider")
    provider_stub.delay(2.5, times=1)  # processed and recorded, answer held back

    result = deliver(message.pk)

    assert result.outcome == Delivery.SENT
    (sent,) = twilio_sends(provider_stub)
    message.refresh_from_db()
    assert message.provider_message_id == sent["message_id"]
    assert deliver(message.pk).outcome == Delivery.SKIPPED
    assert len(twilio_sends(provider_stub)) == 1


# --- recovery of lost tasks -----------------------------------------------------------------


def test_recovery_enqueues_lost_and_interrupted_messages_only(
    active, twilio_channel, provider_stub
):
    conversation = conversation_on(twilio_channel)
    lost = queue(conversation, "Queued while the broker was down", idempotency_key="lost")
    Message.objects.filter(pk=lost.pk).update(
        status_changed_at=timezone.now() - timedelta(minutes=30)
    )
    fresh = queue(conversation, "Just queued", idempotency_key="fresh")
    interrupted = queue(conversation, "Interrupted", idempotency_key="interrupted")
    _interrupted(interrupted)

    count = recover_stuck_messages()  # eager: the tasks run here

    assert count == 2
    assert reload(lost).status == Message.Status.ACCEPTED
    assert reload(fresh).status == Message.Status.QUEUED
    assert reload(interrupted).error_code == "delivery_unknown"
    assert [s["Body"] for s in twilio_sends(provider_stub)] == ["Queued while the broker was down"]


def test_the_recovery_task_crosses_tenants(tenant_a, tenant_b, provider_stub):
    from channels_app.tasks import recover_stuck_messages as task

    messages = []
    for tenant in (tenant_a, tenant_b):
        channel = ChannelFactory(tenant=tenant)
        with tenant_context(tenant):
            message = queue(conversation_on(channel))
            Message.objects.filter(pk=message.pk).update(
                status_changed_at=timezone.now() - timedelta(hours=1)
            )
        messages.append(message)

    assert task.delay().get() == 2

    for message in messages:
        assert reload(message).status == Message.Status.SENT


# --- rate limit -----------------------------------------------------------------------------


def test_beyond_the_burst_delivery_waits_for_its_slot_without_counting_an_attempt(
    active, twilio_channel, provider_stub
):
    Channel.objects.filter(pk=twilio_channel.pk).update(rate_limit_per_second=2)
    conversation = conversation_on(twilio_channel)
    messages = [queue(conversation, f"m{n}", idempotency_key=f"r{n}") for n in range(3)]

    results = [deliver(m.pk) for m in messages]

    assert [r.outcome for r in results] == [Delivery.SENT, Delivery.SENT, Delivery.RETRY]
    waiting = results[2]
    assert 0 < waiting.retry_in <= 0.5
    assert waiting.slot is not None
    third = reload(messages[2])
    assert third.status == Message.Status.QUEUED
    assert third.attempts == 0

    import time

    time.sleep(waiting.retry_in)
    assert deliver(third.pk, slot=waiting.slot).outcome == Delivery.SENT
    assert reload(third).attempts == 1
    assert len(twilio_sends(provider_stub)) == 3


def test_the_eager_task_sleeps_through_a_short_rate_limit_wait(
    active, tenant_a, django_capture_on_commit_callbacks
):
    channel = ChannelFactory(tenant=tenant_a, rate_limit_per_second=1)
    conversation = conversation_on(channel)

    with django_capture_on_commit_callbacks(execute=True):
        first = queue(conversation, "one", idempotency_key="e1")
    with django_capture_on_commit_callbacks(execute=True):
        second = queue(conversation, "two", idempotency_key="e2")

    assert reload(first).status == Message.Status.SENT
    assert reload(second).status == Message.Status.SENT
    assert reload(second).sent_at - reload(first).sent_at >= timedelta(seconds=0.9)


def test_unknown_or_inbound_messages_are_skipped(active, tenant_a):
    from tests.factories import MessageFactory

    inbound = MessageFactory(tenant=tenant_a)

    assert deliver(inbound.pk).outcome == Delivery.SKIPPED
    assert deliver(10**9).outcome == Delivery.SKIPPED


def test_a_status_that_arrived_before_the_provider_id_was_recorded_is_applied(
    active, twilio_channel, provider_stub
):
    from tests.factories import MessageStatusEventFactory

    conversation = conversation_on(twilio_channel)
    message = queue(conversation, "Fast provider")
    result = provider_for(twilio_channel).send(message, to_phone=conversation.contact.phone)
    _interrupted(message)
    # The delivered callback came in while our status write had not happened.
    MessageStatusEventFactory(
        tenant=twilio_channel.tenant,
        channel=twilio_channel,
        message=None,
        provider_message_id=result.provider_message_id,
        status=Message.Status.DELIVERED,
        provider_status="delivered",
    )

    assert deliver(message.pk).outcome == Delivery.SENT

    message.refresh_from_db()
    assert message.provider_message_id == result.provider_message_id
    assert message.status == Message.Status.DELIVERED
