"""P12: viewing a contact or a conversation leaves an entry; owners filter and export the log."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from privacy.models import AccessLogEntry
from tenants.context import tenant_context
from tenants.models import Role
from tests.factories import AccessLogEntryFactory, ContactFactory, ConversationFactory, member

pytestmark = pytest.mark.django_db

Action = AccessLogEntry.Action


def entries(tenant, **filters):
    with tenant_context(tenant):
        return list(AccessLogEntry.objects.filter(**filters))


def log_url(tenant, name="privacy:access_log"):
    return reverse(name, kwargs={"tenant_slug": tenant.slug})


def test_opening_a_conversation_in_the_inbox_writes_an_entry(client, tenant_a):
    agent = member(tenant_a, role=Role.AGENT, email="agent@alpha.example")
    conversation = ConversationFactory(tenant=tenant_a)
    client.force_login(agent)

    response = client.get(
        reverse(
            "channels:inbox_thread",
            kwargs={"tenant_slug": tenant_a.slug, "conversation_id": conversation.pk},
        ),
        HTTP_USER_AGENT="Phone browser",
        REMOTE_ADDR="198.51.100.20",
    )

    assert response.status_code == 200
    [entry] = entries(tenant_a, action=Action.VIEWED_CONVERSATION)
    assert entry.actor == agent and entry.actor_label == "agent@alpha.example"
    assert entry.subject_id == conversation.contact_id
    assert entry.object_type == "channels_app.Conversation"
    assert entry.object_id == str(conversation.pk)
    assert entry.ip_address == "198.51.100.20"
    assert entry.user_agent == "Phone browser"


def test_opening_a_contact_writes_an_entry(client, tenant_a, owner_a):
    contact = ContactFactory(tenant=tenant_a)
    client.force_login(owner_a)

    client.get(
        reverse("crm:contact", kwargs={"tenant_slug": tenant_a.slug, "contact_id": contact.pk})
    )

    [entry] = entries(tenant_a, action=Action.VIEWED_CONTACT)
    assert entry.subject_id == contact.pk and entry.actor == owner_a


def test_the_address_behind_trusted_proxies_is_recorded(client, tenant_a, owner_a, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    contact = ContactFactory(tenant=tenant_a)
    client.force_login(owner_a)
    url = reverse("crm:contact", kwargs={"tenant_slug": tenant_a.slug, "contact_id": contact.pk})

    # The client forged the first address; the trusted proxy appended the one it saw.
    client.get(url, HTTP_X_FORWARDED_FOR="10.9.9.9, 203.0.113.77", REMOTE_ADDR="10.0.0.2")
    settings.TRUSTED_PROXY_COUNT = 0
    client.get(url, HTTP_X_FORWARDED_FOR="203.0.113.77", REMOTE_ADDR="10.0.0.2")

    addresses = [e.ip_address for e in entries(tenant_a, action=Action.VIEWED_CONTACT)]
    assert sorted(addresses) == ["10.0.0.2", "203.0.113.77"]


def test_owners_filter_by_person_action_contact_and_dates(client, tenant_a, owner_a):
    other = member(tenant_a, role=Role.ADMIN, email="admin@alpha.example")
    contact = ContactFactory(tenant=tenant_a, name="Ana Lopes")
    now = timezone.now()
    AccessLogEntryFactory(tenant=tenant_a, actor=owner_a, detail="owner looked", created_at=now)
    AccessLogEntryFactory(
        tenant=tenant_a, actor=other, detail="admin looked", subject=contact, created_at=now
    )
    AccessLogEntryFactory(
        tenant=tenant_a,
        actor=other,
        action=Action.EXPORTED_CONTACTS,
        detail="admin exported",
        created_at=now - timedelta(days=10),
    )
    client.force_login(owner_a)

    def shown(**query):
        return client.get(log_url(tenant_a), query).content.decode()

    html = shown(actor=other.pk)
    assert "admin looked" in html and "admin exported" in html and "owner looked" not in html
    html = shown(action=Action.EXPORTED_CONTACTS)
    assert "admin exported" in html and "admin looked" not in html
    html = shown(subject=contact.pk)
    assert "admin looked" in html and "owner looked" not in html
    day = (now - timedelta(days=10)).date().isoformat()
    html = shown(since=day, until=day)
    assert "admin exported" in html and "admin looked" not in html
    html = shown(since="2026-02-02", until="2026-01-01")
    assert "The end date is before the start date." in html


def test_the_csv_export_escapes_formulas_and_keeps_the_filter(client, tenant_a, owner_a):
    AccessLogEntryFactory(tenant=tenant_a, detail='=HYPERLINK("http://evil")', actor=owner_a)
    AccessLogEntryFactory(tenant=tenant_a, detail="plain, with a comma", action="erased_subject")
    client.force_login(owner_a)

    response = client.get(log_url(tenant_a, "privacy:access_log_export"))
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))

    assert response["Content-Type"].startswith("text/csv")
    assert rows[0][:3] == ["time", "who", "action"]
    details = [row[5] for row in rows[1:]]
    assert '\'=HYPERLINK("http://evil")' in details
    assert "plain, with a comma" in details
    # The export itself is logged.
    assert entries(tenant_a, action=Action.EXPORTED_ACCESS_LOG)

    filtered = client.get(
        log_url(tenant_a, "privacy:access_log_export"), {"action": "erased_subject"}
    )
    rows = list(csv.reader(io.StringIO(b"".join(filtered.streaming_content).decode("utf-8-sig"))))
    assert [row[5] for row in rows[1:]] == ["plain, with a comma"]


def test_only_owners_see_the_access_log(client, tenant_a):
    for role in (Role.ADMIN, Role.AGENT):
        client.force_login(member(tenant_a, role=role))
        assert client.get(log_url(tenant_a)).status_code == 403
        assert client.get(log_url(tenant_a, "privacy:access_log_export")).status_code == 403


def test_the_log_of_one_business_never_shows_anothers(client, tenant_a, tenant_b, owner_a):
    AccessLogEntryFactory(tenant=tenant_b, detail="bravo secret")
    client.force_login(owner_a)

    assert "bravo secret" not in client.get(log_url(tenant_a)).content.decode()
    export = client.get(log_url(tenant_a, "privacy:access_log_export"))
    assert b"bravo secret" not in b"".join(export.streaming_content)


def test_the_privacy_centre_links_the_access_log_for_owners(client, tenant_a, owner_a):
    client.force_login(owner_a)
    html = client.get(reverse("privacy:centre", kwargs={"tenant_slug": tenant_a.slug})).content
    assert log_url(tenant_a).encode() in html


def test_every_page_that_shows_a_contact_or_thread_writes_an_entry(client, tenant_a, owner_a):
    """The no-script "earlier messages" page of a thread, a contact's edit form and the merge
    comparison (both contacts) show personal data too."""
    from channels_app.selectors import encode_cursor
    from tests.factories import MessageFactory

    contact = ContactFactory(tenant=tenant_a, name="Ana")
    other = ContactFactory(tenant=tenant_a, name="Ana duplicate")
    conversation = ConversationFactory(tenant=tenant_a, contact=contact)
    message = MessageFactory(tenant=tenant_a, conversation=conversation)
    client.force_login(owner_a)
    kwargs = {"tenant_slug": tenant_a.slug}

    thread = reverse("channels:inbox_thread", kwargs={**kwargs, "conversation_id": conversation.pk})
    later = encode_cursor(message.created_at + timedelta(seconds=1), message.pk + 1)
    assert client.get(thread, {"before": later}).status_code == 200
    [viewed] = entries(tenant_a, action=Action.VIEWED_CONVERSATION)
    assert viewed.subject_id == contact.pk and viewed.detail == "earlier messages"

    edit = reverse("crm:contact_edit", kwargs={**kwargs, "contact_id": contact.pk})
    assert client.get(edit).status_code == 200
    merge = reverse("crm:contact_merge", kwargs={**kwargs, "contact_id": contact.pk})
    assert client.get(merge, {"other": other.pk}).status_code == 200
    shown = entries(tenant_a, action=Action.VIEWED_CONTACT)
    assert sorted((e.subject_id, e.detail) for e in shown) == sorted(
        [
            (contact.pk, "edit form"),
            (contact.pk, "merge comparison"),
            (other.pk, "merge comparison"),
        ]
    )


def test_an_impossible_paging_time_shows_the_first_page(client, tenant_a, owner_a):
    AccessLogEntryFactory(tenant=tenant_a, detail="kept")
    client.force_login(owner_a)
    response = client.get(
        log_url(tenant_a), {"before_time": "2024-13-01T00:00:00", "before_id": "1"}
    )
    assert response.status_code == 200
    assert "kept" in response.content.decode()
