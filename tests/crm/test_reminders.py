"""Appointment reminders through the send path, once; and the customer's YES / NO answers,
through a real signed sandbox webhook."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db.models import F
from django.utils import timezone

from channels_app.models import Conversation, Message
from channels_app.providers.sandbox import signed_request
from channels_app.services import inbound
from channels_app.services.inbound import run_follow_ups_for
from crm.models import Appointment, Contact
from crm.services import reminders
from crm.tasks import send_appointment_reminders
from privacy.models import ConsentAction, ConsentSource, Purpose
from privacy.services import record_consent
from tenants.context import tenant_context
from tests.factories import (
    AppointmentFactory,
    ChannelFactory,
    ContactFactory,
    MessageTemplateFactory,
    TenantFactory,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("delivery_settings")]


@pytest.fixture
def owner_client(client, owner_a):
    client.force_login(owner_a)
    return client


CUSTOMER = "+14155550199"


def post_sandbox(client, channel, events):
    request = signed_request(channel, events)
    return client.post(
        request.full_path, request.body, content_type="application/json", headers=request.headers
    )


_ids = iter(range(1, 10_000))


def customer_says(client, channel, body, *, phone=CUSTOMER, message_id=None):
    event = {
        "type": "message",
        "id": message_id or f"sbx-in-{next(_ids)}",
        "from": phone,
        "body": body,
    }
    response = post_sandbox(client, channel, [event])
    assert response.status_code == 200, response.content
    return response


@pytest.fixture
def channel(tenant_a):
    return ChannelFactory(tenant=tenant_a, name="Sandbox")


@pytest.fixture
def customer(client, channel, tenant_a, django_capture_on_commit_callbacks):
    """A contact who wrote to the business a moment ago (so the WhatsApp window is open)."""
    with django_capture_on_commit_callbacks(execute=True):
        customer_says(client, channel, "Hello, I'd like to book a check-up")
    with tenant_context(tenant_a):
        return Contact.objects.get(phone=CUSTOMER)


def booked(tenant, contact, *, in_hours=2.0, reminder=24 * 60, **kwargs):
    starts = timezone.now() + dt.timedelta(hours=in_hours)
    return AppointmentFactory(
        tenant=tenant,
        contact=contact,
        title=kwargs.pop("title", "Check-up"),
        starts_at=starts,
        ends_at=starts + dt.timedelta(minutes=30),
        reminder_minutes_before=reminder,
        location=kwargs.pop("location", "12 High Street"),
        **kwargs,
    )


def reminders_sent(tenant):
    with tenant_context(tenant):
        return list(
            Message.objects.filter(
                direction=Message.Direction.OUTBOUND, idempotency_key__startswith="appointment-"
            )
        )


def fresh(appointment):
    with tenant_context(appointment.tenant):
        return Appointment.objects.select_related("reminder_message").get(pk=appointment.pk)


# --- Sending ---------------------------------------------------------------------------------


def test_a_due_reminder_is_sent_once_even_when_the_job_runs_twice(tenant_a, channel, customer):
    appointment = booked(tenant_a, customer)

    first = send_appointment_reminders()
    second = send_appointment_reminders()

    assert (first, second) == (1, 0)
    [message] = reminders_sent(tenant_a)
    assert message.purpose == Purpose.TRANSACTIONAL
    assert message.channel_id == channel.pk
    assert "Check-up" in message.body and "12 High Street" in message.body
    assert "Reply YES to confirm or NO to cancel." in message.body
    appointment = fresh(appointment)
    assert appointment.reminder_message == message
    assert appointment.reminder_sent_at is not None and appointment.reminder_skipped_reason == ""


def test_a_second_worker_cannot_claim_a_reminder_already_sent(tenant_a, channel, customer):
    appointment = booked(tenant_a, customer)

    with tenant_context(tenant_a):
        assert reminders.send_reminder(appointment_id=appointment.pk) == "sent"
        assert reminders.send_reminder(appointment_id=appointment.pk) == "not_due"
    assert len(reminders_sent(tenant_a)) == 1


def test_the_reminder_shows_the_time_in_the_business_time_zone(tenant_a, channel, customer):
    tenant_a.time_zone = "Asia/Tokyo"
    tenant_a.save()
    appointment = booked(tenant_a, customer)

    send_appointment_reminders()

    [message] = reminders_sent(tenant_a)
    local = appointment.starts_at.astimezone(tenant_a.zone)
    assert local.strftime("%H:%M") in message.body


def test_reminders_not_yet_due_cancelled_or_started_are_not_sent(tenant_a, channel, customer):
    later = booked(tenant_a, customer, in_hours=72)  # reminder due in 48 hours
    cancelled = booked(tenant_a, customer, status=Appointment.Status.CANCELLED)
    started = booked(tenant_a, customer, in_hours=-0.25)
    no_reminder = booked(tenant_a, customer, reminder=0)

    assert send_appointment_reminders() == 0

    assert reminders_sent(tenant_a) == []
    for appointment in (later, cancelled, started, no_reminder):
        assert fresh(appointment).reminder_sent_at is None


def test_the_reminder_time_is_configurable(tenant_a, channel, customer):
    soon = booked(tenant_a, customer, in_hours=0.5, reminder=60)
    not_yet = booked(tenant_a, customer, in_hours=3, reminder=60)

    send_appointment_reminders()

    assert fresh(soon).reminder_message is not None
    assert fresh(not_yet).reminder_sent_at is None


def test_one_run_serves_every_business(
    client, tenant_a, channel, customer, tenant_b, django_capture_on_commit_callbacks
):
    other_channel = ChannelFactory(tenant=tenant_b)
    with django_capture_on_commit_callbacks(execute=True):
        customer_says(client, other_channel, "Hi, it's me again")
    with tenant_context(tenant_b):
        other_contact = Contact.objects.get(phone=CUSTOMER)
    booked(tenant_a, customer)
    booked(tenant_b, other_contact, reminder_channel=other_channel)

    sent = send_appointment_reminders()

    assert sent == 2
    assert len(reminders_sent(tenant_a)) == 1 and len(reminders_sent(tenant_b)) == 1


def test_an_opted_out_contact_gets_no_reminder_and_the_reason_is_recorded_once(
    owner_client, tenant_a, channel, customer
):
    with tenant_context(tenant_a):
        record_consent(
            contact=customer,
            media=[channel.medium],
            purposes=[Purpose.TRANSACTIONAL, Purpose.MARKETING],
            action=ConsentAction.WITHDRAWN,
            source=ConsentSource.AGENT,
        )
    appointment = booked(tenant_a, customer)

    send_appointment_reminders()
    send_appointment_reminders()

    assert reminders_sent(tenant_a) == []
    appointment = fresh(appointment)
    assert "opted out" in appointment.reminder_skipped_reason
    assert appointment.reminder_sent_at is not None  # refused once, not retried every minute
    page = owner_client.get(
        f"/app/{tenant_a.slug}/calendar/appointments/{appointment.pk}/"
    ).content.decode()
    assert "Not sent:" in page and "opted out" in page


def test_a_contact_with_no_conversation_and_no_channel_is_recorded(tenant_a, channel):
    stranger = ContactFactory(tenant=tenant_a)
    appointment = booked(tenant_a, stranger)

    send_appointment_reminders()

    assert "no conversation" in fresh(appointment).reminder_skipped_reason


def _close_the_window(tenant, contact):
    with tenant_context(tenant):
        Conversation.objects.filter(contact=contact).update(
            last_inbound_at=F("last_inbound_at") - dt.timedelta(days=3)
        )
        record_consent(
            contact=contact,
            media=["whatsapp"],
            purposes=[Purpose.TRANSACTIONAL],
            action=ConsentAction.GRANTED,
            source=ConsentSource.AGENT,
        )


def test_outside_the_whatsapp_window_without_a_reminder_template_the_reason_is_recorded(
    tenant_a, channel, customer
):
    _close_the_window(tenant_a, customer)
    appointment = booked(tenant_a, customer)

    send_appointment_reminders()

    assert reminders_sent(tenant_a) == []
    reason = fresh(appointment).reminder_skipped_reason
    assert "24 hours" in reason or "appointment_reminder" in reason


def test_outside_the_whatsapp_window_the_approved_reminder_template_is_sent(
    tenant_a, channel, customer
):
    _close_the_window(tenant_a, customer)
    template = MessageTemplateFactory(
        tenant=tenant_a,
        channel=channel,
        name="appointment_reminder",
        body="Hi {{1}}, see you on {{2}} at {{3}}. Reply YES or NO.",
        variables=["1", "2", "3"],
    )
    with tenant_context(tenant_a):
        Contact.objects.filter(pk=customer.pk).update(name="Ana Lima")
    appointment = booked(tenant_a, customer)

    send_appointment_reminders()

    [message] = reminders_sent(tenant_a)
    assert message.template_id == template.pk
    local = appointment.starts_at.astimezone(tenant_a.zone)
    assert message.body.startswith("Hi Ana, see you on ")
    assert local.strftime("%H:%M") in message.body


def test_a_moved_appointment_is_reminded_again_under_a_new_key(tenant_a, channel, customer):
    from crm.services.appointments import update_appointment

    appointment = booked(tenant_a, customer)
    send_appointment_reminders()
    with tenant_context(tenant_a):
        later = appointment.starts_at + dt.timedelta(hours=1)
        update_appointment(
            appointment=appointment, starts_at=later, ends_at=later + dt.timedelta(minutes=30)
        )

    send_appointment_reminders()

    assert len({m.idempotency_key for m in reminders_sent(tenant_a)}) == 2


# --- Replies -------------------------------------------------------------------------------


@pytest.fixture
def reminded(tenant_a, channel, customer):
    appointment = booked(tenant_a, customer)
    send_appointment_reminders()
    assert fresh(appointment).reminder_message is not None
    return appointment


@pytest.fixture
def bot_calls():
    """A later follow-up, standing where the bot does, that notes what it was given."""
    calls = []

    def later_handler(message):
        calls.append(message.body)

    inbound.register_follow_up(later_handler, order=inbound.ORDER_BOT)
    yield calls
    inbound.unregister_follow_up(later_handler)


def acknowledgements(tenant):
    with tenant_context(tenant):
        return list(
            Message.objects.filter(idempotency_key__startswith="appointment-reply-").values_list(
                "body", flat=True
            )
        )


@pytest.mark.parametrize("answer", ["YES", "yes!", " Confirm ", "1"])
def test_yes_confirms_the_appointment_and_the_bot_does_not_see_it(
    client, tenant_a, channel, reminded, bot_calls, django_capture_on_commit_callbacks, answer
):
    with django_capture_on_commit_callbacks(execute=True):
        customer_says(client, channel, answer)

    appointment = fresh(reminded)
    assert appointment.status == Appointment.Status.CONFIRMED
    assert appointment.customer_reply == answer.strip()
    assert appointment.customer_replied_at is not None
    [ack] = acknowledgements(tenant_a)
    assert "is confirmed" in ack
    assert bot_calls == []


@pytest.mark.parametrize("answer", ["NO", "no.", "2"])
def test_no_cancels_the_appointment(
    client, tenant_a, channel, reminded, bot_calls, django_capture_on_commit_callbacks, answer
):
    with django_capture_on_commit_callbacks(execute=True):
        customer_says(client, channel, answer)

    assert fresh(reminded).status == Appointment.Status.CANCELLED
    [ack] = acknowledgements(tenant_a)
    assert "is cancelled" in ack
    assert bot_calls == []


@pytest.mark.parametrize("answer", ["Sí", "sim", "да", "нет", "não"])
def test_answers_in_spanish_portuguese_and_russian_are_understood(
    client, tenant_a, channel, reminded, django_capture_on_commit_callbacks, answer
):
    with django_capture_on_commit_callbacks(execute=True):
        customer_says(client, channel, answer)

    expected = "cancelled" if answer in ("нет", "não") else "confirmed"
    assert fresh(reminded).status == expected


def test_a_retried_follow_up_task_neither_acts_nor_replies_twice(
    client, tenant_a, channel, reminded, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        customer_says(client, channel, "NO")
    with tenant_context(tenant_a):
        answer = Message.objects.get(direction=Message.Direction.INBOUND, body="NO")
        run_follow_ups_for(message_id=answer.pk)
        run_follow_ups_for(message_id=answer.pk)

    assert fresh(reminded).status == Appointment.Status.CANCELLED
    assert len(acknowledgements(tenant_a)) == 1


def test_a_retried_webhook_is_one_answer(
    client, tenant_a, channel, reminded, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        customer_says(client, channel, "YES", message_id="sbx-dup-1")
        customer_says(client, channel, "YES", message_id="sbx-dup-1")

    assert len(acknowledgements(tenant_a)) == 1


def test_other_messages_are_left_to_the_bot(
    client, tenant_a, channel, reminded, bot_calls, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        customer_says(client, channel, "Yes, but can we make it 5pm?")

    assert fresh(reminded).status == Appointment.Status.BOOKED
    assert bot_calls == ["Yes, but can we make it 5pm?"]
    assert acknowledgements(tenant_a) == []


def test_yes_without_a_reminder_is_not_an_appointment_answer(
    client, tenant_a, channel, customer, bot_calls, django_capture_on_commit_callbacks
):
    appointment = booked(tenant_a, customer, in_hours=72)  # its reminder is not sent yet

    with django_capture_on_commit_callbacks(execute=True):
        customer_says(client, channel, "YES")

    assert fresh(appointment).status == Appointment.Status.BOOKED
    assert bot_calls == ["YES"]


def test_cancel_is_an_opt_out_keyword_not_an_appointment_answer(
    client, tenant_a, channel, reminded, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        customer_says(client, channel, "CANCEL")

    assert fresh(reminded).status == Appointment.Status.BOOKED
    assert acknowledgements(tenant_a) == []


def test_a_reply_in_another_business_does_not_touch_this_one(
    client, tenant_a, channel, reminded, django_capture_on_commit_callbacks
):
    other = TenantFactory()
    other_channel = ChannelFactory(tenant=other)

    with django_capture_on_commit_callbacks(execute=True):
        customer_says(client, other_channel, "NO")

    assert fresh(reminded).status == Appointment.Status.BOOKED


@pytest.mark.postgres_only  # real concurrent transactions
@pytest.mark.django_db(transaction=True)
def test_four_workers_running_the_job_at_once_send_one_reminder(client, tenant_a, channel):
    import threading

    from django.db import connection

    customer_says(client, channel, "Hello")
    with tenant_context(tenant_a):
        contact = Contact.objects.get(phone=CUSTOMER)
    appointment = booked(tenant_a, contact)
    barrier = threading.Barrier(4)
    results, errors = [], []

    def worker():
        try:
            barrier.wait(timeout=10)
            results.append(send_appointment_reminders())
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert not errors, errors
    assert sorted(results) == [0, 0, 0, 1]
    assert len(reminders_sent(tenant_a)) == 1
    assert fresh(appointment).reminder_message is not None
