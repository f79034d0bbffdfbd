"""Appointments and the calendar: times in the business's zone (DST-safe), bad input, status."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from crm.models import Appointment
from crm.services import appointments as services
from tenants.context import tenant_context
from tests.factories import AppointmentFactory, ContactFactory, TenantFactory, member

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner_client(client, owner_a):
    client.force_login(owner_a)
    return client


@pytest.fixture
def in_a(tenant_a):
    """Tenant A active for the test body (services and the scoped managers need it)."""
    with tenant_context(tenant_a):
        yield tenant_a


LONDON = ZoneInfo("Europe/London")
UTC = dt.UTC


def url(name, tenant, **kwargs):
    return reverse(name, kwargs={"tenant_slug": tenant.slug, **kwargs})


@pytest.fixture
def london(tenant_a):
    tenant_a.time_zone = "Europe/London"
    tenant_a.save()
    return tenant_a


@pytest.fixture
def contact(tenant_a):
    return ContactFactory(tenant=tenant_a, name="Ana Lima")


def form(contact, starts, ends, **extra):
    data = {
        "title": "Check-up",
        "contact": contact.pk,
        "starts_at": starts,
        "ends_at": ends,
        "location": "Room 2",
        "reminder_minutes_before": 1440,
    }
    data.update(extra)
    return data


def test_an_appointment_is_entered_in_the_business_time_zone_and_stored_in_utc(
    owner_client, london, contact, owner_a
):
    response = owner_client.post(
        url("crm:appointment_new", london),
        form(contact, "2026-07-14T10:00", "2026-07-14T10:45", owner=owner_a.pk),
    )

    assert response.status_code == 302
    with tenant_context(london):
        appointment = Appointment.objects.get()
        assert appointment.starts_at == dt.datetime(2026, 7, 14, 9, 0, tzinfo=UTC)  # BST
        assert appointment.ends_at == dt.datetime(2026, 7, 14, 9, 45, tzinfo=UTC)
        assert appointment.owner == owner_a and appointment.created_by == owner_a
    page = owner_client.get(response["Location"]).content.decode()
    assert "10:00–10:45" in page and "Europe/London" in page


def test_an_appointment_ending_before_it_starts_is_a_form_error(owner_client, london, contact):
    response = owner_client.post(
        url("crm:appointment_new", london), form(contact, "2026-07-14T10:00", "2026-07-14T09:00")
    )

    assert response.status_code == 400
    assert "The appointment must end after it starts." in response.content.decode()
    with tenant_context(london):
        assert not Appointment.objects.exists()


def test_the_service_refuses_an_end_before_the_start(in_a, contact):
    start = timezone.now() + dt.timedelta(days=1)

    with pytest.raises(ValidationError) as refused:
        services.create_appointment(
            title="Check-up", contact=contact, starts_at=start, ends_at=start
        )
    assert "ends_at" in refused.value.message_dict
    assert not Appointment.objects.exists()


def test_a_contact_of_another_business_is_refused(owner_client, london):
    foreign = ContactFactory(tenant=TenantFactory())

    response = owner_client.post(
        url("crm:appointment_new", london), form(foreign, "2026-07-14T10:00", "2026-07-14T11:00")
    )

    assert response.status_code == 400
    assert "Select a valid choice" in response.content.decode()


@pytest.mark.parametrize(
    "local",
    ["2026-03-29T01:30", "2026-10-25T01:30"],
    ids=["skipped-by-spring-forward", "repeated-by-fall-back"],
)
def test_a_local_time_that_does_not_exist_or_happens_twice_is_a_form_error(
    owner_client, london, contact, local
):
    response = owner_client.post(
        url("crm:appointment_new", london), form(contact, local, "2026-10-25T03:00")
    )

    assert response.status_code == 400
    assert "it may be ambiguous or it may not exist" in response.content.decode()
    with tenant_context(london):
        assert not Appointment.objects.exists()


def test_the_same_wall_clock_time_either_side_of_the_dst_change_shows_the_same(
    owner_client, london, contact
):
    for day in ("2026-03-28", "2026-03-29"):
        owner_client.post(
            url("crm:appointment_new", london),
            form(contact, f"{day}T10:00", f"{day}T10:30", title=f"Visit {day}"),
        )
    with tenant_context(london):
        stored = list(Appointment.objects.order_by("starts_at").values_list("starts_at", flat=True))
    assert stored == [
        dt.datetime(2026, 3, 28, 10, 0, tzinfo=UTC),  # GMT
        dt.datetime(2026, 3, 29, 9, 0, tzinfo=UTC),  # BST
    ]

    week = owner_client.get(url("crm:calendar", london), {"view": "week", "date": "2026-03-26"})
    html = week.content.decode()
    assert html.count("10:00–10:30") == 2
    assert "Visit 2026-03-28" in html and "Visit 2026-03-29" in html


def test_the_month_view_puts_an_appointment_on_its_local_day(owner_client, tenant_a, contact):
    tenant_a.time_zone = "America/Los_Angeles"
    tenant_a.save()
    # 23:30 on 14 July in Los Angeles is 06:30 on 15 July in UTC.
    AppointmentFactory(
        tenant=tenant_a,
        contact=contact,
        title="Late call",
        starts_at=dt.datetime(2026, 7, 15, 6, 30, tzinfo=UTC),
        ends_at=dt.datetime(2026, 7, 15, 7, 0, tzinfo=UTC),
    )

    html = owner_client.get(url("crm:calendar", tenant_a), {"date": "2026-07-01"}).content.decode()

    assert "July 2026" in html
    cell = html[html.index('aria-label="Tuesday 14 July 2026"') :]
    cell = cell[: cell.index("</td>")]
    assert "Late call" in cell and "23:30" in cell


def test_calendar_navigation_moves_by_month_and_week(owner_client, london):
    month = owner_client.get(url("crm:calendar", london), {"date": "2026-01-31"}).content.decode()
    week = owner_client.get(
        url("crm:calendar", london), {"view": "week", "date": "2026-03-04"}
    ).content.decode()

    assert "date=2025-12-01" in month and "date=2026-02-01" in month
    assert "date=2026-02-25" in week and "date=2026-03-11" in week
    assert "Week of 2 Mar – 8 Mar 2026" in week


def test_confirm_cancel_and_no_show(owner_client, tenant_a, contact):
    upcoming = AppointmentFactory(tenant=tenant_a, contact=contact)
    status_url = url("crm:appointment_status", tenant_a, appointment_id=upcoming.pk)

    owner_client.post(status_url, {"action": "confirm"})
    with tenant_context(tenant_a):
        assert Appointment.objects.get(pk=upcoming.pk).status == "confirmed"

    refused = owner_client.post(status_url, {"action": "no_show"}, follow=True)
    assert "has not started yet" in refused.content.decode()

    owner_client.post(status_url, {"action": "cancel"})
    with tenant_context(tenant_a):
        assert Appointment.objects.get(pk=upcoming.pk).status == "cancelled"

    past = AppointmentFactory(
        tenant=tenant_a,
        contact=contact,
        starts_at=timezone.now() - dt.timedelta(hours=2),
    )
    owner_client.post(
        url("crm:appointment_status", tenant_a, appointment_id=past.pk), {"action": "no_show"}
    )
    with tenant_context(tenant_a):
        assert Appointment.objects.get(pk=past.pk).status == "no_show"


def test_moving_an_appointment_re_arms_its_reminder(in_a, contact):
    start = timezone.now() + dt.timedelta(days=3)
    appointment = AppointmentFactory(
        tenant=in_a, contact=contact, starts_at=start, ends_at=start + dt.timedelta(hours=1)
    )
    Appointment.objects.filter(pk=appointment.pk).update(
        reminder_sent_at=timezone.now(), reminder_skipped_reason="opted out"
    )

    services.update_appointment(appointment=appointment, notes="Bring the X-rays")
    appointment.refresh_from_db()
    assert appointment.reminder_sent_at is not None  # same time: no second reminder

    later = start + dt.timedelta(days=1)
    services.update_appointment(
        appointment=appointment, starts_at=later, ends_at=later + dt.timedelta(hours=1)
    )
    appointment.refresh_from_db()
    assert appointment.reminder_sent_at is None and appointment.reminder_skipped_reason == ""


def test_the_owner_must_be_a_member(in_a, contact):
    outsider = member(TenantFactory())
    start = timezone.now() + dt.timedelta(days=1)

    with pytest.raises(ValidationError) as refused:
        services.create_appointment(
            title="Check-up",
            contact=contact,
            starts_at=start,
            ends_at=start + dt.timedelta(hours=1),
            owner=outsider,
        )
    assert "owner" in refused.value.message_dict


def test_the_contact_picker_searches_by_name_or_phone(owner_client, tenant_a):
    ContactFactory(tenant=tenant_a, name="Ana Lima", phone="+14155550101")
    ContactFactory(tenant=tenant_a, name="Tom Rees", phone="+14155550102")
    ContactFactory(tenant=TenantFactory(), name="Ana Foreign")
    search = url("crm:appointment_contacts", tenant_a)

    by_name = owner_client.get(search, {"q": "ana"}).content.decode()
    by_phone = owner_client.get(search, {"q": "0102"}).content.decode()

    assert "Ana Lima" in by_name and "Tom Rees" not in by_name and "Foreign" not in by_name
    assert "Tom Rees" in by_phone and "Ana Lima" not in by_phone


def test_a_contact_beyond_the_first_page_of_the_picker_can_be_booked(
    owner_client, london, monkeypatch
):
    from crm import calendar_forms

    monkeypatch.setattr(calendar_forms, "CONTACT_OPTIONS", 1)
    ContactFactory(tenant=london, name="Aaron First")
    last = ContactFactory(tenant=london, name="Zoe Last")

    page = owner_client.get(url("crm:appointment_new", london)).content.decode()
    prefilled = owner_client.get(url("crm:appointment_new", london), {"contact": last.pk})
    response = owner_client.post(
        url("crm:appointment_new", london), form(last, "2026-07-14T10:00", "2026-07-14T11:00")
    )

    assert "Aaron First" in page and "Zoe Last" not in page
    assert "Zoe Last" in prefilled.content.decode()
    assert response.status_code == 302
    with tenant_context(london):
        assert Appointment.objects.get().contact == last


def test_appointment_pages_highlight_calendar_in_the_navigation(owner_client, tenant_a):
    appointment = AppointmentFactory(tenant=tenant_a)
    link = f'href="{url("crm:calendar", tenant_a)}" aria-current="page"'

    page = owner_client.get(url("crm:appointment", tenant_a, appointment_id=appointment.pk))

    assert link in page.content.decode()
