"""The privacy centre: consent numbers and chart, requests, retention and purge reports with a
dry run, sub-processors, security events and incidents, for owners and admins."""

from __future__ import annotations

import datetime
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from channels_app.models import Conversation, Message
from privacy import selectors, services
from privacy.models import ConsentAction, ConsentSource, PurgeReport
from tenants.context import tenant_context
from tenants.models import Role
from tests.factories import (
    ContactFactory,
    ConversationFactory,
    DataRequestFactory,
    IncidentFactory,
    MessageFactory,
    PurgeReportFactory,
    SecurityEventFactory,
    member,
)
from tests.test_pages import assert_no_third_party_code

pytestmark = pytest.mark.django_db


def url(name, tenant, **kwargs):
    return reverse(name, kwargs={"tenant_slug": tenant.slug, **kwargs})


def consent(tenant, contact, *, media, purposes, action):
    with tenant_context(tenant):
        services.record_consent(
            contact=contact,
            media=media,
            purposes=purposes,
            action=action,
            source=ConsentSource.AGENT,
        )


def test_consent_numbers_by_channel_and_purpose(tenant_a, tenant_b):
    for _ in range(3):
        consent(
            tenant_a,
            ContactFactory(tenant=tenant_a),
            media=["whatsapp"],
            purposes=["transactional", "marketing"],
            action=ConsentAction.GRANTED,
        )
    consent(
        tenant_a,
        ContactFactory(tenant=tenant_a),
        media=["whatsapp"],
        purposes=["marketing"],
        action=ConsentAction.WITHDRAWN,
    )
    consent(
        tenant_b,
        ContactFactory(tenant=tenant_b),
        media=["sms"],
        purposes=["marketing"],
        action=ConsentAction.GRANTED,
    )

    with tenant_context(tenant_a):
        rows = {
            (r.medium, r.purpose): (r.opted_in, r.opted_out) for r in selectors.consent_numbers()
        }

    assert rows[("whatsapp", "transactional")] == (3, 0)
    assert rows[("whatsapp", "marketing")] == (3, 1)
    assert rows[("sms", "marketing")] == (0, 0)  # another business's contact


def test_the_consent_chart_counts_events_per_day(tenant_a):
    contact = ContactFactory(tenant=tenant_a)
    consent(tenant_a, contact, media=["sms"], purposes=["marketing"], action="granted")
    consent(tenant_a, contact, media=["sms"], purposes=["marketing"], action="withdrawn")
    today = timezone.localdate()

    with tenant_context(tenant_a):
        chart = selectors.consent_chart(zone=datetime.UTC, days=7, today=today)

    assert chart.days[-1] == today and len(chart.days) == 7
    assert chart.granted[-1] == 1 and chart.withdrawn[-1] == 1
    assert sum(chart.granted[:-1]) == 0
    assert len(chart.granted_points.split()) == 7
    # The last point of the grants line is at the top of the scale (1 is the most on a day).
    assert chart.granted_points.split()[-1].endswith(",8.0")


def test_the_centre_shows_every_card_and_no_third_party_code(client, tenant_a, owner_a):
    consent(
        tenant_a, ContactFactory(tenant=tenant_a), media=["whatsapp"], purposes=["marketing"],
        action="granted",
    )  # fmt: skip
    PurgeReportFactory(tenant=tenant_a, counts={"messages": {"channels_app.Message": 12}})
    SecurityEventFactory(tenant=tenant_a, ip_address="203.0.113.50", count=4)
    IncidentFactory(tenant=tenant_a, title="Wrong recipient")
    DataRequestFactory(tenant=tenant_a, due_date=timezone.localdate() - datetime.timedelta(days=1))
    client.force_login(owner_a)

    response = client.get(url("privacy:centre", tenant_a))

    html = response.content.decode()
    assert response.status_code == 200
    assert_no_third_party_code(html, "privacy:centre")
    assert "<svg" in html and "polyline" in html
    # Open and overdue data requests, with the way to the list.
    assert 'id="dsr-summary-title"' in html and "badge-danger" in html
    assert url("privacy:requests", tenant_a) in html
    assert "12 rows" in html
    assert "Messages, after the conversation is resolved: 30 days" in html
    assert "203.0.113.50" in html and "×4" in html
    assert "Wrong recipient" in html and "left" in html
    assert "Platform hosting provider" in html
    assert url("tenant:settings", tenant_a) in html
    assert url("privacy:retention", tenant_a) in html
    assert url("privacy:deletion", tenant_a) in html


def test_admins_open_the_centre_and_agents_cannot(client, tenant_a):
    admin = member(tenant_a, role=Role.ADMIN)
    client.force_login(admin)
    html = client.get(url("privacy:centre", tenant_a)).content.decode()
    # Deletion and the access log are for owners only.
    assert url("privacy:deletion", tenant_a) not in html
    assert url("privacy:access_log", tenant_a) not in html

    client.force_login(member(tenant_a, role=Role.AGENT))
    assert client.get(url("privacy:centre", tenant_a)).status_code == 403
    assert client.get(url("privacy:retention", tenant_a)).status_code == 403


def test_the_dry_run_page_counts_and_deletes_nothing(client, tenant_a, owner_a):
    old = ConversationFactory(
        tenant=tenant_a,
        status=Conversation.Status.RESOLVED,
        resolved_at=timezone.now() - timedelta(days=45),
    )
    for _ in range(3):
        MessageFactory(tenant=tenant_a, conversation=old)
    client.force_login(owner_a)

    html = client.get(url("privacy:retention", tenant_a)).content.decode()
    assert "What the next purge would remove" in html
    assert 'messages: <span class="numbers">3</span>' in html

    response = client.post(url("privacy:retention", tenant_a))

    assert response.status_code == 302
    with tenant_context(tenant_a):
        assert Message.objects.count() == 3
        report = PurgeReport.objects.get()
    assert report.dry_run and report.counts["messages"]["channels_app.Message"] == 3
    html = client.get(url("privacy:retention", tenant_a)).content.decode()
    assert "dry run" in html
    assert "<strong>Messages, after the conversation is resolved</strong>: messages 3" in html


def test_every_privacy_page_renders_without_inline_code(client, tenant_a, owner_a):
    incident = IncidentFactory(tenant=tenant_a)
    client.force_login(owner_a)
    for name, kwargs in [
        ("privacy:centre", {}),
        ("privacy:retention", {}),
        ("privacy:security", {}),
        ("privacy:incidents", {}),
        ("privacy:incident", {"incident_id": incident.pk}),
        ("privacy:access_log", {}),
        ("privacy:deletion", {}),
    ]:
        response = client.get(url(name, tenant_a, **kwargs))
        assert response.status_code == 200, name
        assert_no_third_party_code(response.content.decode(), name)
