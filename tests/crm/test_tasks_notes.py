"""Tasks ("My tasks" in the business's day, overdue highlighted, complete/reopen/delete) and
notes on contacts, companies and deals."""

from __future__ import annotations

import datetime
import zoneinfo

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from crm.models import Note, Task
from crm.selectors.tasks import grouped
from crm.services.notes import add_note
from crm.services.tasks import complete_task, create_task, reopen_task
from tenants.context import tenant_context
from tests.factories import (
    CompanyFactory,
    ContactFactory,
    DealFactory,
    NoteFactory,
    TaskFactory,
    member,
)

pytestmark = pytest.mark.django_db

LONDON = zoneinfo.ZoneInfo("Europe/London")


def at(hour, minute=0, day=15):
    return datetime.datetime(2030, 6, day, hour, minute, tzinfo=LONDON)


def test_my_tasks_are_grouped_by_the_business_day(tenant_a, agent_a):
    now = at(12)
    for title, due in [
        ("late", at(9)),
        ("this evening", at(23, 30)),
        ("tomorrow", at(0, 30, day=16)),
        ("someday", None),
    ]:
        TaskFactory(tenant=tenant_a, title=title, due_at=due, assignee=agent_a)
    TaskFactory(tenant=tenant_a, title="done", assignee=agent_a, completed_at=now)
    TaskFactory(tenant=tenant_a, title="someone else's", due_at=at(9), assignee=member(tenant_a))

    with tenant_context(tenant_a):
        groups = grouped(assignee=agent_a, zone=LONDON, now=now)
        everyone = grouped(everyone=True, zone=LONDON, now=now)

    titles = lambda tasks: [t.title for t in tasks]  # noqa: E731
    assert titles(groups.overdue) == ["late"]
    assert titles(groups.today) == ["this evening"]
    assert titles(groups.upcoming) == ["tomorrow", "someday"]
    assert titles(groups.done) == ["done"]
    assert titles(everyone.overdue) == ["late", "someone else's"]


def test_the_page_highlights_overdue_tasks(agent_client, url, tenant_a, agent_a):
    TaskFactory(
        tenant=tenant_a,
        title="Send the quote",
        assignee=agent_a,
        due_at=timezone.now() - datetime.timedelta(hours=2),
    )
    TaskFactory(
        tenant=tenant_a,
        title="Plan the visit",
        assignee=agent_a,
        due_at=timezone.now() + datetime.timedelta(days=3),
    )
    html = agent_client.get(url("crm:tasks")).content.decode()
    overdue_part = html.split('id="overdue-title"')[1].split('id="today-title"')[0]
    assert "Send the quote" in overdue_part and "task-overdue" in overdue_part
    assert "Plan the visit" not in overdue_part


def test_create_complete_reopen_and_delete_from_the_pages(agent_client, url, tenant_a, agent_a):
    tenant_a.time_zone = "Asia/Tokyo"
    tenant_a.save()
    created = agent_client.post(
        url("crm:task_new"),
        {"title": "Renew contract", "due_at": "2030-03-01T10:00", "assignee": str(agent_a.pk)},
    )
    assert created.status_code == 302
    with tenant_context(tenant_a):
        task = Task.objects.get()
    assert task.due_at == datetime.datetime(2030, 3, 1, 1, 0, tzinfo=datetime.UTC)  # 10:00 in Tokyo
    assert task.created_by == agent_a

    edit = agent_client.get(url("crm:task", task_id=task.pk)).content.decode()
    assert 'value="2030-03-01T10:00"' in edit  # shown back in the business's time

    agent_client.post(url("crm:task_complete", task_id=task.pk))
    agent_client.post(url("crm:task_complete", task_id=task.pk))  # twice is harmless
    with tenant_context(tenant_a):
        task.refresh_from_db()
    first_done = task.completed_at
    assert first_done is not None

    agent_client.post(url("crm:task_reopen", task_id=task.pk))
    with tenant_context(tenant_a):
        task.refresh_from_db()
    assert task.completed_at is None

    agent_client.post(url("crm:task_delete", task_id=task.pk))
    with tenant_context(tenant_a):
        assert not Task.objects.exists()


def test_a_task_form_with_no_title_is_refused(agent_client, url, tenant_a):
    response = agent_client.post(url("crm:task_new"), {"title": "", "due_at": "not a date"})
    assert response.status_code == 400
    with tenant_context(tenant_a):
        assert not Task.objects.exists()


def test_the_assignee_must_be_a_member(tenant_a, tenant_b, agent_a):
    outsider = member(tenant_b)
    with tenant_context(tenant_a):
        with pytest.raises(ValidationError):
            create_task(title="x", created_by=agent_a, assignee=outsider)
        task = create_task(title="x", created_by=agent_a, assignee=agent_a)
        complete_task(task=task)
        reopen_task(task=task)
        assert not task.is_done


def test_a_task_linked_to_a_deal_shows_on_its_contact(tenant_a, agent_a):
    contact = ContactFactory(tenant=tenant_a)
    deal = DealFactory(tenant=tenant_a, contact=contact)
    with tenant_context(tenant_a):
        task = create_task(title="Follow up", created_by=agent_a, deal=deal)
    assert task.contact_id == contact.pk and task.deal_id == deal.pk


# --- notes ----------------------------------------------------------------------------------


def test_notes_on_contacts_companies_and_deals(tenant_a, agent_a):
    contact = ContactFactory(tenant=tenant_a)
    company = CompanyFactory(tenant=tenant_a)
    deal = DealFactory(tenant=tenant_a, contact=contact)
    with tenant_context(tenant_a):
        add_note(body="on the contact", author=agent_a, contact=contact)
        add_note(body="on the company", author=agent_a, company=company)
        add_note(body="on the deal", author=agent_a, deal=deal)
        with pytest.raises(ValidationError):
            add_note(body="   ", author=agent_a, contact=contact)
        with pytest.raises(ValueError):
            add_note(body="two places", author=agent_a, contact=contact, company=company)
        assert sorted(Note.objects.values_list("body", flat=True)) == [
            "on the company",
            "on the contact",
            "on the deal",
        ]


def test_edit_and_delete_a_note(agent_client, url, tenant_a):
    contact = ContactFactory(tenant=tenant_a)
    note = NoteFactory(tenant=tenant_a, contact=contact, body="first words")
    response = agent_client.post(url("crm:note", note_id=note.pk), {"body": "better words"})
    assert response["Location"] == url("crm:contact", contact_id=contact.pk)
    with tenant_context(tenant_a):
        note.refresh_from_db()
    assert note.body == "better words" and note.edited_at is not None

    assert agent_client.post(url("crm:note", note_id=note.pk), {"body": ""}).status_code == 400
    agent_client.post(url("crm:note_delete", note_id=note.pk))
    with tenant_context(tenant_a):
        assert not Note.objects.exists()
