"""`.ics` downloads and the private per-member calendar feed."""

from __future__ import annotations

import datetime as dt

import icalendar
import pytest
from django.urls import reverse

from crm.models import CalendarFeed
from tenants.context import tenant_context
from tenants.models import Membership
from tests.factories import AppointmentFactory, ContactFactory, member

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner_client(client, owner_a):
    client.force_login(owner_a)
    return client


UTC = dt.UTC


def url(name, tenant, **kwargs):
    return reverse(name, kwargs={"tenant_slug": tenant.slug, **kwargs})


def events(body: bytes) -> list:
    calendar = icalendar.Calendar.from_ical(body)
    return list(calendar.walk("VEVENT"))


@pytest.fixture
def appointment(tenant_a, owner_a):
    tenant_a.time_zone = "Europe/Madrid"
    tenant_a.save()
    return AppointmentFactory(
        tenant=tenant_a,
        contact=ContactFactory(tenant=tenant_a, name="Ana Lima"),
        title="Whitening",
        owner=owner_a,
        starts_at=dt.datetime(2026, 10, 25, 0, 30, tzinfo=UTC),  # 02:30 CEST, the DST night
        ends_at=dt.datetime(2026, 10, 25, 1, 30, tzinfo=UTC),  # 02:30 CET
        location="Room 3",
        link="https://meet.example.com/abc",
        notes="First visit",
    )


def test_one_appointment_downloads_as_a_valid_ics_file(owner_client, tenant_a, appointment):
    response = owner_client.get(url("crm:appointment_ics", tenant_a, appointment_id=appointment.pk))

    assert response.status_code == 200
    assert response["Content-Type"] == "text/calendar; charset=utf-8"
    assert "attachment" in response["Content-Disposition"]
    [event] = events(response.content)
    assert event.decoded("dtstart") == dt.datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    assert event.decoded("dtend") == dt.datetime(2026, 10, 25, 1, 30, tzinfo=UTC)
    assert str(event["summary"]) == "Whitening · Ana Lima"
    assert str(event["location"]) == "Room 3"
    assert str(event["url"]) == "https://meet.example.com/abc"
    assert str(event["status"]) == "TENTATIVE"
    assert str(event["uid"]) == f"appointment-{appointment.pk}@{tenant_a.slug}.salesos"


def test_a_member_creates_a_private_feed_of_their_own_appointments(
    owner_client, client, tenant_a, owner_a, appointment
):
    colleague = member(tenant_a)
    AppointmentFactory(tenant=tenant_a, title="Someone else's", owner=colleague)
    AppointmentFactory(tenant=tenant_a, title="Nobody's")

    owner_client.post(url("crm:calendar_feed", tenant_a))

    with tenant_context(tenant_a):
        feed = CalendarFeed.objects.get(user=owner_a)
    feed_url = reverse("crm_public:calendar_feed", kwargs={"token": feed.token})
    page = owner_client.get(url("crm:calendar", tenant_a)).content.decode()
    assert feed_url in page

    owner_client.logout()
    response = client.get(feed_url)  # calendar apps have no session
    assert response.status_code == 200
    assert response["Content-Type"] == "text/calendar; charset=utf-8"
    titles = [str(event["summary"]) for event in events(response.content)]
    assert titles == ["Whitening · Ana Lima"]


def test_resetting_the_feed_invalidates_the_old_address(owner_client, client, tenant_a, owner_a):
    owner_client.post(url("crm:calendar_feed", tenant_a))
    with tenant_context(tenant_a):
        old = CalendarFeed.objects.get(user=owner_a).token

    owner_client.post(url("crm:calendar_feed", tenant_a))
    with tenant_context(tenant_a):
        new = CalendarFeed.objects.get(user=owner_a).token

    assert new != old
    assert client.get(reverse("crm_public:calendar_feed", kwargs={"token": old})).status_code == 404
    assert client.get(reverse("crm_public:calendar_feed", kwargs={"token": new})).status_code == 200


def test_an_unknown_token_is_404(client, db):
    assert (
        client.get(reverse("crm_public:calendar_feed", kwargs={"token": "nope"})).status_code == 404
    )


def test_a_member_who_left_loses_their_feed(owner_client, client, tenant_a, owner_a):
    owner_client.post(url("crm:calendar_feed", tenant_a))
    with tenant_context(tenant_a):
        token = CalendarFeed.objects.get(user=owner_a).token
    Membership.objects.filter(tenant=tenant_a, user=owner_a).delete()

    assert (
        client.get(reverse("crm_public:calendar_feed", kwargs={"token": token})).status_code == 404
    )


def test_a_feed_shows_only_its_own_business(client, tenant_a, tenant_b, owner_a):
    # The same person works for both businesses.
    Membership.objects.create(tenant=tenant_b, user=owner_a, role="agent")
    AppointmentFactory(tenant=tenant_a, title="At Alpha", owner=owner_a)
    AppointmentFactory(tenant=tenant_b, title="At Bravo", owner=owner_a)
    with tenant_context(tenant_b):
        feed = CalendarFeed.objects.create(user=owner_a)

    response = client.get(reverse("crm_public:calendar_feed", kwargs={"token": feed.token}))

    titles = [str(event["summary"]) for event in events(response.content)]
    assert len(titles) == 1 and titles[0].startswith("At Bravo")


def test_a_cancelled_appointment_stays_in_the_feed_as_cancelled(client, tenant_a, owner_a):
    AppointmentFactory(tenant=tenant_a, title="Called off", owner=owner_a, status="cancelled")
    with tenant_context(tenant_a):
        feed = CalendarFeed.objects.create(user=owner_a)

    response = client.get(reverse("crm_public:calendar_feed", kwargs={"token": feed.token}))

    [event] = events(response.content)
    assert str(event["status"]) == "CANCELLED"
