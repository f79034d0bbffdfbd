"""P6, P7: data requests logged from the dashboard and from a customer's message, shown with
what was found before anything is done, carried out, rejected, and chased when overdue."""

from __future__ import annotations

import datetime

import pytest
from django.template import Context, Template
from django.urls import reverse

from channels_app.models import Medium
from crm.models import Contact
from privacy import dsr
from privacy.access_log import Action
from privacy.gate import can_message
from privacy.models import AccessLogEntry, ConsentState, DataRequest, Purpose
from privacy.tasks import notify_overdue_requests
from tenants.context import tenant_context
from tenants.models import Role
from tests.factories import (
    ChannelFactory,
    ContactFactory,
    ConversationFactory,
    DataRequestFactory,
    MessageFactory,
    member,
)

pytestmark = pytest.mark.django_db

PHONE = "+447700900321"
EMAIL = "carla@example.org"


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")


@pytest.fixture
def contact(tenant_a):
    return ContactFactory(tenant=tenant_a, name="Carla", phone=PHONE, email=EMAIL)


def url(name, tenant, **kwargs):
    return reverse(f"privacy:{name}", kwargs={"tenant_slug": tenant.slug, **kwargs})


def carry_out(data_request, capture):
    with tenant_context(data_request.tenant):
        with capture(execute=True):
            dsr.confirm_request(data_request=data_request)
        data_request.refresh_from_db()
    return data_request


# --- From the dashboard -------------------------------------------------------------------


def test_an_owner_logs_a_request_sees_what_was_found_then_carries_it_out(
    client, tenant_a, owner_a, contact, django_capture_on_commit_callbacks
):
    client.force_login(owner_a)
    response = client.post(
        url("request_new", tenant_a), {"kind": "export", "phone": "+44 7700 900321"}
    )
    assert response.status_code == 302
    with tenant_context(tenant_a):
        data_request = DataRequest.objects.get()
    assert data_request.subject_phone == PHONE  # normalised
    assert data_request.contact_id == contact.pk
    assert data_request.source == DataRequest.Source.DASHBOARD
    assert data_request.created_by == owner_a

    page = client.get(response["Location"]).content.decode()
    assert "crm.Contact" in page and "Carry out" in page

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url("request_confirm", tenant_a, data_request_id=data_request.pk))
    assert response.status_code == 302
    page = client.get(url("request_detail", tenant_a, data_request_id=data_request.pk))
    assert "Download the archive" in page.content.decode()
    with tenant_context(tenant_a):
        data_request.refresh_from_db()
    assert data_request.status == DataRequest.Status.DONE
    listing = client.get(url("requests", tenant_a) + "?status=done").content.decode()
    assert f"#{data_request.pk}" in listing or f">{data_request.pk}<" in listing


def test_opening_a_request_is_in_the_access_log(client, tenant_a, owner_a, contact):
    """The page shows the person's phone, e-mail and what was found of them (P12)."""
    with tenant_context(tenant_a):
        data_request = dsr.create_request(kind="export", phone=PHONE)
    client.force_login(owner_a)

    page = client.get(
        url("request_detail", tenant_a, data_request_id=data_request.pk),
        REMOTE_ADDR="198.51.100.7",
    )

    assert page.status_code == 200
    with tenant_context(tenant_a):
        [entry] = AccessLogEntry.objects.filter(action=Action.VIEWED_DATA_REQUEST)
    assert entry.actor == owner_a and entry.subject_id == contact.pk
    assert (entry.object_type, entry.object_id) == ("privacy.DataRequest", str(data_request.pk))
    assert entry.detail == f"data request #{data_request.pk}"
    assert entry.ip_address == "198.51.100.7"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"kind": "export"}, "phone number or e-mail"),
        ({"kind": "export", "phone": "not a number"}, "is not a phone number"),
        ({"kind": "export", "email": "carla-at-example"}, "is not an e-mail address"),
        ({"kind": "rectification", "phone": PHONE}, "Say what to correct"),
        ({"kind": "teleport", "phone": PHONE}, "Select a valid choice"),
    ],
)
def test_bad_input_gets_a_clear_error_and_nothing_is_logged(
    client, tenant_a, owner_a, contact, data, message
):
    client.force_login(owner_a)
    response = client.post(url("request_new", tenant_a), data)
    assert response.status_code == 200
    assert message in response.content.decode()
    with tenant_context(tenant_a):
        assert not DataRequest.objects.exists()


def test_a_request_for_an_unknown_person_says_nothing_found_and_is_recorded(
    client, tenant_a, owner_a
):
    client.force_login(owner_a)
    response = client.post(url("request_new", tenant_a), {"kind": "erasure", "email": EMAIL})
    page = client.get(response["Location"]).content.decode()
    assert "Nothing found" in page
    with tenant_context(tenant_a):
        data_request = DataRequest.objects.get()
    assert data_request.findings["nothing_found"] is True
    assert data_request.contact is None and data_request.subject_email == EMAIL


def test_a_request_can_be_rejected_with_a_reason(client, tenant_a, owner_a, contact):
    client.force_login(owner_a)
    with tenant_context(tenant_a):
        data_request = dsr.create_request(kind="erasure", phone=PHONE)
    response = client.post(url("request_reject", tenant_a, data_request_id=data_request.pk), {})
    assert response.status_code == 302
    with tenant_context(tenant_a):
        data_request.refresh_from_db()
    assert data_request.status == DataRequest.Status.AWAITING_CONFIRMATION
    client.post(
        url("request_reject", tenant_a, data_request_id=data_request.pk),
        {"reason": "Could not confirm who they are"},
    )
    with tenant_context(tenant_a):
        data_request.refresh_from_db()
        assert Contact.objects.filter(pk=contact.pk).exists()
    assert data_request.status == DataRequest.Status.REJECTED
    assert "Could not confirm" in data_request.result["summary"]


def test_agents_cannot_open_the_requests_pages(client, tenant_a):
    client.force_login(member(tenant_a, Role.AGENT))
    assert client.get(url("requests", tenant_a)).status_code == 403
    assert client.get(url("request_new", tenant_a)).status_code == 403


# --- Rectification and consent withdrawal -------------------------------------------------


def test_rectification_edits_the_contact_and_records_field_names_only(
    tenant_a, contact, django_capture_on_commit_callbacks
):
    with tenant_context(tenant_a):
        data_request = dsr.create_request(
            kind="rectification",
            phone=PHONE,
            changes={"name": "Carla Gómez", "email": "CARLA.G@example.org", "phone": PHONE},
        )
    data_request = carry_out(data_request, django_capture_on_commit_callbacks)

    with tenant_context(tenant_a):
        contact.refresh_from_db()
        logged = AccessLogEntry.objects.get(action=Action.RECTIFIED)
    assert (contact.name, contact.email) == ("Carla Gómez", "carla.g@example.org")
    assert data_request.result["changed_fields"] == ["name", "email"]
    assert data_request.result["unchanged_fields"] == ["phone"]
    assert data_request.changes == {}  # the new values do not stay in the record
    assert "Carla" not in str(data_request.result)
    assert logged.subject_id == contact.pk and "name, email" in logged.detail


def test_rectification_refuses_a_phone_another_contact_has(tenant_a, contact):
    ContactFactory(tenant=tenant_a, phone="+447700900999")
    with tenant_context(tenant_a), pytest.raises(dsr.DataRequestError) as refused:
        dsr.create_request(kind="rectification", phone=PHONE, changes={"phone": "+447700900999"})
    assert refused.value.field == "changes"
    with tenant_context(tenant_a), pytest.raises(dsr.DataRequestError):
        dsr.create_request(kind="rectification", phone=PHONE, changes={"lifecycle_stage": "x"})


def test_consent_withdrawal_stops_every_medium_and_purpose(
    tenant_a, contact, django_capture_on_commit_callbacks
):
    channel = ChannelFactory(tenant=tenant_a)
    with tenant_context(tenant_a):
        data_request = dsr.create_request(kind="consent_withdrawal", email=EMAIL)
    carry_out(data_request, django_capture_on_commit_callbacks)
    with tenant_context(tenant_a):
        states = ConsentState.objects.filter(contact=contact)
        assert {(s.medium, s.purpose, s.action, s.source) for s in states} == {
            (medium, purpose, "withdrawn", "data_request")
            for medium in Medium.values
            for purpose in Purpose.values
        }
        assert can_message(contact, channel, Purpose.TRANSACTIONAL).reason == "opted_out"


# --- One click from the inbox -------------------------------------------------------------


def test_an_agent_turns_a_customer_message_into_a_request(client, tenant_a, contact):
    agent = member(tenant_a, Role.AGENT)
    conversation = ConversationFactory(tenant=tenant_a, contact=contact)
    message = MessageFactory(
        tenant=tenant_a, conversation=conversation, body="Please delete everything about me"
    )
    client.force_login(agent)
    thread = client.get(
        reverse(
            "channels:inbox_thread",
            kwargs={"tenant_slug": tenant_a.slug, "conversation_id": conversation.pk},
        )
    ).content.decode()
    action = url("request_from_message", tenant_a, message_id=message.pk)
    assert action in thread and "Turn into a data request" in thread

    response = client.post(action, {"kind": "erasure"})

    assert response.status_code == 302
    with tenant_context(tenant_a):
        data_request = DataRequest.objects.get()
    assert data_request.kind == "erasure"
    assert data_request.source == DataRequest.Source.MESSAGE
    assert data_request.message_id == message.pk
    assert (data_request.subject_phone, data_request.subject_email) == (PHONE, EMAIL)
    assert data_request.contact_id == contact.pk
    assert data_request.status == DataRequest.Status.AWAITING_CONFIRMATION


def test_outbound_messages_cannot_become_requests(client, tenant_a, owner_a, contact):
    conversation = ConversationFactory(tenant=tenant_a, contact=contact)
    message = MessageFactory(
        tenant=tenant_a, conversation=conversation, direction="outbound", sender_kind="agent"
    )
    client.force_login(owner_a)
    response = client.post(
        url("request_from_message", tenant_a, message_id=message.pk), {"kind": "erasure"}
    )
    assert response.status_code == 404


# --- Overdue ---------------------------------------------------------------------------------


def test_owners_get_one_email_per_overdue_request(tenant_a, mailoutbox):
    owner = member(tenant_a, Role.OWNER)
    member(tenant_a, Role.AGENT)
    late = DataRequestFactory(
        tenant=tenant_a, due_date=datetime.date.today() - datetime.timedelta(days=3)
    )
    DataRequestFactory(tenant=tenant_a)  # not due yet
    DataRequestFactory(
        tenant=tenant_a,
        due_date=datetime.date.today() - datetime.timedelta(days=3),
        status=DataRequest.Status.DONE,
    )

    assert notify_overdue_requests() == 1
    assert notify_overdue_requests() == 0

    assert len(mailoutbox) == 1
    assert mailoutbox[0].to == [owner.email]
    assert f"#{late.pk}" in mailoutbox[0].subject
    assert f"/privacy/requests/{late.pk}/" in mailoutbox[0].body


def test_the_list_flags_overdue_requests(client, tenant_a, owner_a):
    DataRequestFactory(tenant=tenant_a, due_date=datetime.date.today() - datetime.timedelta(3))
    client.force_login(owner_a)
    page = client.get(url("requests", tenant_a)).content.decode()
    assert "row-overdue" in page and "1 overdue" in page


def test_the_centre_summary_tag_counts_open_and_overdue(tenant_a):
    DataRequestFactory(tenant=tenant_a, due_date=datetime.date.today() - datetime.timedelta(3))
    DataRequestFactory(tenant=tenant_a)
    with tenant_context(tenant_a):
        html = Template("{% load data_requests %}{% data_requests_summary %}").render(Context())
    assert "Data requests" in html
    assert "<dd>2</dd>" in html and 'badge-danger">1<' in html
    assert url("requests", tenant_a) in html


def test_a_second_open_request_of_the_same_kind_points_to_the_first(
    client, tenant_a, owner_a, contact
):
    client.force_login(owner_a)
    client.post(url("request_new", tenant_a), {"kind": "erasure", "phone": PHONE})
    response = client.post(url("request_new", tenant_a), {"kind": "erasure", "email": EMAIL})
    with tenant_context(tenant_a):
        first = DataRequest.objects.get()
    assert response.status_code == 200
    assert f"already open: #{first.pk}" in response.content.decode()
    # Another kind for the same person is a request of its own.
    client.post(url("request_new", tenant_a), {"kind": "export", "phone": PHONE})
    with tenant_context(tenant_a):
        assert DataRequest.objects.count() == 2


def test_the_page_of_a_done_erasure_shows_the_result_and_the_verification(
    client, tenant_a, owner_a, contact, django_capture_on_commit_callbacks
):
    conversation = ConversationFactory(tenant=tenant_a, contact=contact)
    message = MessageFactory(tenant=tenant_a, conversation=conversation, body="Erase me")
    with tenant_context(tenant_a):
        data_request = dsr.create_request(
            kind="erasure", message=message, source=DataRequest.Source.MESSAGE
        )
    carry_out(data_request, django_capture_on_commit_callbacks)
    client.force_login(owner_a)
    page = client.get(url("request_detail", tenant_a, data_request_id=data_request.pk))
    html = page.content.decode()
    assert page.status_code == 200
    assert "nothing remains" in html and "crm.Contact" in html and "delete: 1" in html
    assert "salted hashes" in html
    assert PHONE not in html and EMAIL not in html


# --- Failed, stalled and concurrent requests --------------------------------------------------


def test_a_converted_message_is_due_from_the_day_the_customer_wrote(tenant_a, contact):
    conversation = ConversationFactory(tenant=tenant_a, contact=contact)
    written = datetime.datetime(2026, 11, 2, 9, 0, tzinfo=datetime.UTC)  # a Monday
    message = MessageFactory(
        tenant=tenant_a, conversation=conversation, body="Delete my data", created_at=written
    )
    with tenant_context(tenant_a):
        data_request = dsr.create_request(
            kind="erasure", message=message, source=DataRequest.Source.MESSAGE
        )
    # Seven business days from Monday 2 November, not from the day it was turned into one.
    assert data_request.due_date == datetime.date(2026, 11, 11)


def test_a_failed_request_stays_open_and_runs_again_to_the_end(
    client, tenant_a, owner_a, contact, settings, tmp_path, django_capture_on_commit_callbacks
):
    working = settings.MEDIA_ROOT
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    settings.MEDIA_ROOT = str(blocker / "media")  # the archive cannot be stored
    with tenant_context(tenant_a):
        data_request = dsr.create_request(kind="export", phone=PHONE)
        with pytest.raises(OSError), django_capture_on_commit_callbacks(execute=True):
            dsr.confirm_request(data_request=data_request)
        data_request.refresh_from_db()
        assert data_request.status == DataRequest.Status.FAILED
        assert data_request.failure_reason
        # Still owed to the person: listed as open, and a second one points to it.
        assert data_request.is_open and data_request.can_run_again
        assert list(dsr.open_requests()) == [data_request]
        with pytest.raises(dsr.DuplicateRequest):
            dsr.create_request(kind="export", phone=PHONE)

    client.force_login(owner_a)
    detail = client.get(url("request_detail", tenant_a, data_request_id=data_request.pk))
    assert "Run again" in detail.content.decode()

    settings.MEDIA_ROOT = working
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url("request_run_again", tenant_a, data_request_id=data_request.pk))
    assert response.status_code == 302
    with tenant_context(tenant_a):
        data_request.refresh_from_db()
    assert data_request.status == DataRequest.Status.DONE
    assert data_request.failure_reason == ""
    assert data_request.export_available()

    # Done is done: running it again is refused with a message.
    response = client.post(
        url("request_run_again", tenant_a, data_request_id=data_request.pk), follow=True
    )
    assert "Only a request that failed" in response.content.decode()


def test_a_failed_request_can_be_rejected(tenant_a, contact):
    data_request = DataRequestFactory(
        tenant=tenant_a, status=DataRequest.Status.FAILED, subject_phone=PHONE
    )
    with tenant_context(tenant_a):
        rejected = dsr.reject_request(data_request=data_request, reason="Identity not confirmed")
    assert rejected.status == DataRequest.Status.REJECTED
    assert not rejected.is_open


def test_a_request_whose_queue_message_was_lost_is_queued_again(
    tenant_a, contact, django_capture_on_commit_callbacks
):
    from privacy.tasks import requeue_stalled_requests

    with tenant_context(tenant_a):
        data_request = dsr.create_request(kind="export", phone=PHONE)
        with django_capture_on_commit_callbacks(execute=False):  # the message never arrives
            dsr.confirm_request(data_request=data_request)
        data_request.refresh_from_db()
        assert data_request.status == DataRequest.Status.IN_PROGRESS
        assert not data_request.can_run_again
        assert dsr.requeue_stalled() == 0  # queued a moment ago: not stalled

        later = data_request.queued_at + DataRequest.STALLED_AFTER
        data_request.refresh_from_db()
        assert data_request.is_stalled(later)
        DataRequest.objects.filter(pk=data_request.pk).update(
            queued_at=data_request.queued_at - DataRequest.STALLED_AFTER
        )
    with django_capture_on_commit_callbacks(execute=True):
        assert requeue_stalled_requests() == 1
    with tenant_context(tenant_a):
        data_request.refresh_from_db()
    assert data_request.status == DataRequest.Status.DONE
    assert data_request.export_available()


@pytest.mark.postgres_only
def test_a_business_carries_out_one_request_at_a_time(
    tenant_a, contact, django_capture_on_commit_callbacks
):
    """While another worker carries out a request of the business (it holds the business's
    lock), a second one waits: an export beside an erasure would write back what it erased."""
    import psycopg
    from django.db import connection

    with tenant_context(tenant_a):
        data_request = dsr.create_request(kind="export", phone=PHONE)
        with django_capture_on_commit_callbacks(execute=False):
            dsr.confirm_request(data_request=data_request)
    params = connection.settings_dict
    other = psycopg.connect(
        dbname=params["NAME"],
        user=params["USER"],
        password=params["PASSWORD"] or None,
        host=params["HOST"],
        port=params["PORT"] or None,
        autocommit=True,
    )
    key = f"privacy.data_requests:{tenant_a.pk}"
    try:
        other.execute("SELECT pg_advisory_lock(hashtextextended(%s, 0))", [key])
        with tenant_context(tenant_a), pytest.raises(dsr.Busy):
            dsr.carry_out(request_id=data_request.pk)
        with tenant_context(tenant_a):
            data_request.refresh_from_db()
        assert data_request.status == DataRequest.Status.IN_PROGRESS
        other.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", [key])
        with tenant_context(tenant_a):
            assert dsr.carry_out(request_id=data_request.pk).status == DataRequest.Status.DONE
    finally:
        other.close()
