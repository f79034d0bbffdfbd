"""The contact page: details, consent, one activity timeline newest first, notes and tasks
added from it, and an access-log entry for every view (P12)."""

from __future__ import annotations

import datetime
import re
from datetime import timedelta

import pytest
from django.utils import timezone

from crm.models import Note, Task
from privacy.models import AccessLogEntry, ConsentAction, ConsentSource, Purpose
from privacy.services import record_consent
from tenants.context import tenant_context
from tests.factories import (
    AppointmentFactory,
    ContactFactory,
    ConversationFactory,
    DealFactory,
    DealStageChangeFactory,
    MessageFactory,
    NoteFactory,
    StageFactory,
    TaskFactory,
)

pytestmark = pytest.mark.django_db


def timeline_kinds(html: str) -> list[str]:
    return re.findall(r'class="timeline-item timeline-(\w+)"', html)


def test_the_timeline_merges_every_kind_newest_first(agent_client, url, tenant_a):
    contact = ContactFactory(tenant=tenant_a, name="Ana")
    now = timezone.now()
    conversation = ConversationFactory(tenant=tenant_a, contact=contact)
    MessageFactory(
        tenant=tenant_a,
        conversation=conversation,
        body="Hi there",
        created_at=now - timedelta(hours=7),
    )
    deal = DealFactory(
        tenant=tenant_a, contact=contact, title="Implants", created_at=now - timedelta(hours=6)
    )
    DealStageChangeFactory(
        tenant=tenant_a,
        deal=deal,
        from_stage=deal.stage,
        to_stage=StageFactory(tenant=tenant_a, pipeline=deal.pipeline, name="Won"),
        changed_at=now - timedelta(hours=5),
    )
    TaskFactory(
        tenant=tenant_a, contact=contact, title="Call back", created_at=now - timedelta(hours=4)
    )
    AppointmentFactory(
        tenant=tenant_a, contact=contact, title="Check-up", starts_at=now - timedelta(hours=3)
    )
    NoteFactory(
        tenant=tenant_a,
        contact=contact,
        body="Prefers mornings",
        created_at=now - timedelta(hours=2),
    )
    with tenant_context(tenant_a):
        record_consent(
            contact=contact,
            media=["whatsapp"],
            purposes=[Purpose.MARKETING],
            action=ConsentAction.GRANTED,
            source=ConsentSource.AGENT,
        )

    html = agent_client.get(url("crm:contact", contact_id=contact.pk)).content.decode()

    assert timeline_kinds(html) == [
        "consent",
        "note",
        "appointment",
        "task",
        "stage",
        "deal",
        "message",
    ]
    for text in ("Hi there", "Implants", "Won", "Call back", "Check-up", "Prefers mornings"):
        assert text in html


def test_the_timeline_pages_back_without_gaps(agent_client, url, tenant_a):
    contact = ContactFactory(tenant=tenant_a)
    now = timezone.now()
    for i in range(45):
        NoteFactory(
            tenant=tenant_a,
            contact=contact,
            body=f"note {i:02d}",
            created_at=now - timedelta(minutes=i),
        )
    first = agent_client.get(url("crm:contact", contact_id=contact.pk)).content.decode()
    shown = re.findall(r"note (\d\d)", first)
    assert shown == [f"{i:02d}" for i in range(30)]

    more = re.search(r'href="(\?before=[^"]+)"', first)[1]
    rest = agent_client.get(
        url("crm:contact", contact_id=contact.pk) + more.replace("&amp;", "&"),
        headers={"HX-Request": "true"},
    ).content.decode()
    assert re.findall(r"note (\d\d)", rest) == [f"{i:02d}" for i in range(30, 45)]
    assert "<html" not in rest  # HTMX gets only the items
    assert "Earlier activity" not in rest


def test_every_view_of_a_contact_is_in_the_access_log(agent_client, agent_a, url, tenant_a):
    contact = ContactFactory(tenant=tenant_a)
    agent_client.get(url("crm:contact", contact_id=contact.pk), REMOTE_ADDR="203.0.113.9")
    agent_client.get(url("crm:contact", contact_id=contact.pk))
    with tenant_context(tenant_a):
        entries = list(AccessLogEntry.objects.filter(action=AccessLogEntry.Action.VIEWED_CONTACT))
    assert len(entries) == 2
    assert {e.subject_id for e in entries} == {contact.pk}
    assert {e.actor_id for e in entries} == {agent_a.pk}
    assert "203.0.113.9" in {e.ip_address for e in entries}


def test_consent_state_and_history_show_on_the_page(agent_client, url, tenant_a):
    contact = ContactFactory(tenant=tenant_a)
    with tenant_context(tenant_a):
        record_consent(
            contact=contact,
            media=["sms"],
            purposes=[Purpose.TRANSACTIONAL],
            action=ConsentAction.GRANTED,
            source=ConsentSource.AGENT,
            evidence="On the phone",
        )
        record_consent(
            contact=contact,
            media=["sms"],
            purposes=[Purpose.TRANSACTIONAL],
            action=ConsentAction.WITHDRAWN,
            source=ConsentSource.KEYWORD,
            evidence="STOP",
        )
    html = agent_client.get(url("crm:contact", contact_id=contact.pk)).content.decode()
    assert 'class="badge consent-withdrawn"' in html
    assert "On the phone" in html and "STOP" in html


def test_a_restricted_contact_carries_the_badge(agent_client, url, tenant_a):
    contact = ContactFactory(tenant=tenant_a, processing_restricted_at=timezone.now())
    html = agent_client.get(url("crm:contact", contact_id=contact.pk)).content.decode()
    assert "Processing restricted" in html


def test_add_a_note_and_a_task_from_the_page(agent_client, agent_a, url, tenant_a):
    tenant_a.time_zone = "America/New_York"
    tenant_a.save()
    contact = ContactFactory(tenant=tenant_a)
    agent_client.post(
        url("crm:contact_note_add", contact_id=contact.pk), {"body": "Called, no answer"}
    )
    agent_client.post(
        url("crm:contact_task_add", contact_id=contact.pk),
        {"title": "Call again", "due_at": "2030-01-15T09:30", "assignee": str(agent_a.pk)},
    )
    empty = agent_client.post(url("crm:contact_note_add", contact_id=contact.pk), {"body": "  "})
    assert empty.status_code == 400
    with tenant_context(tenant_a):
        note = Note.objects.get()
        task = Task.objects.get()
        contact.refresh_from_db()
    assert (note.body, note.author, note.contact_id) == ("Called, no answer", agent_a, contact.pk)
    assert task.assignee == agent_a and task.contact_id == contact.pk
    # 09:30 in New York in January is 14:30 UTC.
    assert task.due_at.astimezone(datetime.UTC) == datetime.datetime(
        2030, 1, 15, 14, 30, tzinfo=datetime.UTC
    )
    assert contact.last_activity_at >= task.created_at
