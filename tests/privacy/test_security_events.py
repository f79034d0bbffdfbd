"""P17: forged webhooks, failed-login bursts and large exports are recorded as security events;
incidents carry a 72-hour notification clock."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from privacy import security
from privacy.models import Incident, SecurityEvent
from tenants.context import tenant_context
from tenants.models import Role
from tests.factories import (
    AccessLogEntryFactory,
    ChannelFactory,
    IncidentFactory,
    MembershipFactory,
    SecurityEventFactory,
    member,
)

pytestmark = pytest.mark.django_db


def events(tenant, **filters):
    with tenant_context(tenant):
        return list(SecurityEvent.objects.filter(**filters))


def test_a_forged_webhook_is_a_security_event_and_a_burst_is_one_event(client, tenant_a):
    channel = ChannelFactory(tenant=tenant_a)
    url = reverse("hook_sandbox", kwargs={"token": channel.webhook_token})
    body = json.dumps({"events": [{"type": "message", "id": "x", "from": "+14155550100"}]})

    for _ in range(3):
        response = client.post(
            url, body, content_type="application/json", REMOTE_ADDR="203.0.113.9"
        )
        assert response.status_code == 403
    client.post(url, body, content_type="application/json", REMOTE_ADDR="198.51.100.4")

    [event, other] = sorted(
        events(tenant_a, kind=SecurityEvent.Kind.FORGED_WEBHOOK), key=lambda e: -e.count
    )
    assert event.count == 3
    assert event.channel_id == channel.pk
    assert "missing" in event.detail
    # Where the forgeries came from: one event per sender.
    assert (event.ip_address, other.ip_address, other.count) == ("203.0.113.9", "198.51.100.4", 1)


def test_a_malformed_webhook_is_recorded_as_such(client, tenant_a, settings):
    settings.WEBHOOK_MAX_BODY_BYTES = 10
    channel = ChannelFactory(tenant=tenant_a)
    url = reverse("hook_sandbox", kwargs={"token": channel.webhook_token})

    response = client.post(url, "x" * 100, content_type="application/json", REMOTE_ADDR="::1")
    assert response.status_code == 413

    [event] = events(tenant_a, kind=SecurityEvent.Kind.MALFORMED_WEBHOOK)
    assert "larger than" in event.detail
    assert event.ip_address == "::1"


def test_repeats_long_apart_are_separate_events(tenant_a):
    now = timezone.now()
    with tenant_context(tenant_a):
        first = security.record_event(kind="forged_webhook", ip_address="203.0.113.1", now=now)
        later = security.record_event(
            kind="forged_webhook", ip_address="203.0.113.1", now=now + timedelta(hours=1)
        )
        other_ip = security.record_event(
            kind="forged_webhook", ip_address="198.51.100.7", now=now + timedelta(hours=1)
        )
    assert len({first.pk, later.pk, other_ip.pk}) == 3


def test_a_burst_of_failed_logins_makes_one_event_in_each_business_of_the_user(
    client, tenant_a, tenant_b, settings
):
    settings.FAILED_LOGIN_BURST = 3
    user = member(tenant_a, email="burst@alpha.example")
    MembershipFactory(tenant=tenant_b, user=user, role=Role.AGENT)
    login = reverse("account_login")

    for _ in range(4):
        response = client.post(
            login, {"login": "burst@alpha.example", "password": "wrong"}, REMOTE_ADDR="192.0.2.44"
        )
        assert response.status_code in (200, 429)

    for tenant in (tenant_a, tenant_b):
        [event] = events(tenant, kind=SecurityEvent.Kind.FAILED_LOGIN_BURST)
        assert event.user == user
        assert event.ip_address == "192.0.2.44"
        assert "burst@alpha.example" in event.detail


def test_a_few_failed_logins_are_not_an_event(client, tenant_a, settings):
    settings.FAILED_LOGIN_BURST = 5
    member(tenant_a, email="typo@alpha.example")
    for _ in range(2):
        client.post(reverse("account_login"), {"login": "typo@alpha.example", "password": "no"})
    assert events(tenant_a, kind=SecurityEvent.Kind.FAILED_LOGIN_BURST) == []


def test_a_large_access_log_export_is_a_mass_export_event(client, tenant_a, owner_a, settings):
    settings.MASS_EXPORT_ROWS = 3
    for _ in range(3):
        AccessLogEntryFactory(tenant=tenant_a)
    client.force_login(owner_a)

    response = client.get(
        reverse("privacy:access_log_export", kwargs={"tenant_slug": tenant_a.slug})
    )
    b"".join(response.streaming_content)

    [event] = events(tenant_a, kind=SecurityEvent.Kind.MASS_EXPORT)
    # Three entries, and the entry recording this export.
    assert event.user == owner_a and "4 rows" in event.detail


def test_a_small_export_is_not_an_event(tenant_a, settings):
    settings.MASS_EXPORT_ROWS = 1000
    with tenant_context(tenant_a):
        assert security.note_export(rows=10, what="contacts") is None
    assert events(tenant_a) == []


# --- Incidents and their clock -----------------------------------------------------------------


def test_an_incident_must_be_notified_within_72_hours_of_detection(tenant_a):
    detected = timezone.now() - timedelta(hours=10)
    with tenant_context(tenant_a):
        incident = security.open_incident(title="Laptop lost", detected_at=detected)

    assert incident.notify_by == detected + timedelta(hours=72)
    assert incident.time_left(now=detected + timedelta(hours=10)) == timedelta(hours=62)
    assert not incident.is_overdue(now=detected + timedelta(hours=71, minutes=59))
    assert incident.is_overdue(now=detected + timedelta(hours=72))


def test_a_notified_incident_is_never_overdue(tenant_a):
    detected = timezone.now() - timedelta(hours=100)
    incident = IncidentFactory(tenant=tenant_a, detected_at=detected)
    with tenant_context(tenant_a):
        security.record_notification(
            incident=incident,
            notified_whom="Data protection authority",
            notified_at=detected + timedelta(hours=50),
        )
    assert incident.status == Incident.Status.NOTIFIED
    assert not incident.is_overdue()


def test_incident_input_is_checked(tenant_a):
    incident = IncidentFactory(tenant=tenant_a)
    with tenant_context(tenant_a):
        with pytest.raises(ValidationError):
            security.open_incident(title="  ", detected_at=timezone.now())
        with pytest.raises(ValidationError):
            security.open_incident(title="x", detected_at=timezone.now() + timedelta(days=1))
        with pytest.raises(ValidationError):
            security.record_notification(
                incident=incident, notified_whom="", notified_at=timezone.now()
            )
        with pytest.raises(ValidationError):
            security.record_notification(
                incident=incident,
                notified_whom="DPA",
                notified_at=incident.detected_at - timedelta(hours=1),
            )


def test_the_incident_pages_show_the_clock(client, tenant_a, owner_a):
    client.force_login(owner_a)
    incidents_url = reverse("privacy:incidents", kwargs={"tenant_slug": tenant_a.slug})

    response = client.post(
        incidents_url,
        {"title": "Export sent to the wrong address", "detected_at": "2020-01-01T10:00"},
    )
    assert response.status_code == 302
    html = client.get(response["Location"]).content.decode()
    assert "Export sent to the wrong address" in html and "overdue by" in html

    fresh = IncidentFactory(tenant=tenant_a, title="Fresh one")
    html = client.get(incidents_url).content.decode()
    assert "Fresh one" in html and "left" in html

    incident_url = reverse(
        "privacy:incident", kwargs={"tenant_slug": tenant_a.slug, "incident_id": fresh.pk}
    )
    response = client.post(incident_url, {"notified_whom": "", "notified_at": "2020-01-01T10:00"})
    assert response.status_code == 400
    assert "required" in response.content.decode()


def test_the_security_log_filters_by_kind_and_agents_cannot_see_it(client, tenant_a, owner_a):
    SecurityEventFactory(tenant=tenant_a, kind="forged_webhook", detail="forged one")
    SecurityEventFactory(tenant=tenant_a, kind="mass_export", detail="big export")
    url = reverse("privacy:security", kwargs={"tenant_slug": tenant_a.slug})
    client.force_login(owner_a)

    html = client.get(url, {"kind": "mass_export"}).content.decode()

    assert "big export" in html and "forged one" not in html
    client.force_login(member(tenant_a, role=Role.AGENT))
    assert client.get(url).status_code == 403


def test_incident_times_are_read_in_the_business_time_zone(client, tenant_a, owner_a):
    """The form is filled in with the business's local time; what is typed is read in it too
    (not as UTC), so the 72-hour clock starts when the owner says it did."""
    tenant_a.time_zone = "Europe/Berlin"
    tenant_a.save(update_fields=["time_zone"])
    client.force_login(owner_a)
    incidents_url = reverse("privacy:incidents", kwargs={"tenant_slug": tenant_a.slug})

    # "Now" as the form offers it (Berlin is ahead of UTC): not in the future.
    now_in_berlin = timezone.localtime(timezone.now(), tenant_a.zone).strftime("%Y-%m-%dT%H:%M")
    response = client.post(incidents_url, {"title": "Now", "detected_at": now_in_berlin})
    assert response.status_code == 302

    client.post(incidents_url, {"title": "Winter", "detected_at": "2026-01-10T10:00"})
    with tenant_context(tenant_a):
        winter = Incident.objects.get(title="Winter")
    assert winter.detected_at == datetime(2026, 1, 10, 9, 0, tzinfo=UTC)
    assert winter.notify_by == winter.detected_at + timedelta(hours=72)

    incident_url = reverse(
        "privacy:incident", kwargs={"tenant_slug": tenant_a.slug, "incident_id": winter.pk}
    )
    client.post(incident_url, {"notified_whom": "DPA", "notified_at": "2026-01-11T10:00"})
    with tenant_context(tenant_a):
        winter.refresh_from_db()
    assert winter.notified_at == datetime(2026, 1, 11, 9, 0, tzinfo=UTC)
