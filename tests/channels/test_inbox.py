"""The shared inbox: the list, a thread, replies, notes, assignment, consent, live updates."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from channels_app import ratelimit, selectors
from channels_app.models import Conversation, Message
from privacy.models import ConsentAction, ConsentEvent, ConsentSource, Purpose
from privacy.services import record_consent
from salesos.celery import app as celery_app
from tenants.context import tenant_context
from tenants.models import Role
from tests.factories import (
    ChannelFactory,
    ContactFactory,
    ConversationFactory,
    MessageFactory,
    MessageTemplateFactory,
    member,
)
from tests.test_pages import assert_no_third_party_code

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _messaging(settings):
    """Delivery runs in the test (as `make run`), with in-process rate limits."""
    settings.CELERY_TASK_ALWAYS_EAGER = True
    settings.RATE_LIMIT_REDIS_URL = "memory"
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    ratelimit.reset()
    yield
    ratelimit.reset()
    celery_app.conf.task_always_eager = previous


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def channel(tenant_a):
    return ChannelFactory(tenant=tenant_a, name="Sandbox")


@pytest.fixture
def agent(tenant_a):
    return member(tenant_a, role=Role.AGENT, full_name="Alex Agent")


@pytest.fixture
def agent_client(client, agent):
    client.force_login(agent)
    return client


def conversation(tenant, channel, *, minutes_ago=0, written=True, **fields):
    """A conversation whose customer wrote `minutes_ago` (inside the window unless told)."""
    at = timezone.now() - timedelta(minutes=minutes_ago)
    fields.setdefault("last_inbound_at", at if written else None)
    return ConversationFactory(tenant=tenant, channel=channel, last_message_at=at, **fields)


def refresh(obj):
    # Row-level security: outside its tenant a row is invisible, even to refresh_from_db().
    with tenant_context(obj.tenant):
        obj.refresh_from_db()
    return obj


def inbox_url(tenant, **params):
    url = reverse("channels:inbox", kwargs={"tenant_slug": tenant.slug})
    if params:
        url += "?" + "&".join(f"{k}={v}" for k, v in params.items())
    return url


def thread_url(conv, name="channels:inbox_thread"):
    return reverse(name, kwargs={"tenant_slug": conv.tenant.slug, "conversation_id": conv.pk})


def listed_ids(html: str) -> list[int]:
    return [int(pk) for pk in re.findall(r'data-key="conversation-(\d+)"', html)]


def htmx(client, url, **kwargs):
    return client.get(url, headers={"HX-Request": "true"}, **kwargs)


# --- The list ------------------------------------------------------------------------------------


def test_the_inbox_page_renders_with_no_third_party_code(agent_client, tenant_a, channel):
    conversation(tenant_a, channel)

    response = agent_client.get(inbox_url(tenant_a))

    assert response.status_code == 200
    html = response.content.decode()
    assert_no_third_party_code(html, "inbox")
    assert "/static/css/inbox.css" in html and "/static/js/inbox.js" in html


def test_tabs_show_mine_unassigned_and_all(agent_client, tenant_a, channel, agent):
    colleague = member(tenant_a, role=Role.AGENT)
    mine = conversation(tenant_a, channel, assignee=agent, minutes_ago=1)
    theirs = conversation(tenant_a, channel, assignee=colleague, minutes_ago=2)
    nobody = conversation(tenant_a, channel, minutes_ago=3)

    def tab(name):
        return listed_ids(agent_client.get(inbox_url(tenant_a, tab=name)).content.decode())

    assert tab("mine") == [mine.pk]
    assert tab("unassigned") == [nobody.pk]
    assert tab("all") == [mine.pk, theirs.pk, nobody.pk]


def test_status_filter_hides_resolved_by_default(agent_client, tenant_a, channel):
    open_ = conversation(tenant_a, channel, minutes_ago=1)
    pending = conversation(tenant_a, channel, minutes_ago=2, status=Conversation.Status.PENDING)
    resolved = conversation(tenant_a, channel, minutes_ago=3, status=Conversation.Status.RESOLVED)

    def shown(**params):
        return listed_ids(agent_client.get(inbox_url(tenant_a, **params)).content.decode())

    assert shown() == [open_.pk, pending.pk]
    assert shown(status="resolved") == [resolved.pk]
    assert shown(status="pending") == [pending.pk]
    assert shown(status="any") == [open_.pk, pending.pk, resolved.pk]


def test_channel_filter(agent_client, tenant_a, channel):
    other_channel = ChannelFactory(tenant=tenant_a, name="Other")
    here = conversation(tenant_a, channel, minutes_ago=1)
    there = conversation(tenant_a, other_channel, minutes_ago=2)

    html = agent_client.get(inbox_url(tenant_a, channel=other_channel.pk)).content.decode()

    assert listed_ids(html) == [there.pk]
    assert here.pk not in listed_ids(html)


def test_search_by_name_phone_and_message_text(agent_client, tenant_a, channel):
    ana = ContactFactory(tenant=tenant_a, name="Ana Lima", phone="+14155550123")
    bob = ContactFactory(tenant=tenant_a, name="Bob Stone", phone="+14155550999")
    with_ana = conversation(tenant_a, channel, contact=ana, minutes_ago=1)
    with_bob = conversation(tenant_a, channel, contact=bob, minutes_ago=2)
    MessageFactory(tenant=tenant_a, conversation=with_bob, body="Is the whitening offer on?")

    def search(q):
        return listed_ids(agent_client.get(inbox_url(tenant_a), {"q": q}).content.decode())

    assert search("ana li") == [with_ana.pk]
    assert search("(415) 555-0123") == [with_ana.pk]
    assert search("WHITENING") == [with_bob.pk]
    assert search("nobody at all") == []


def test_keyset_pagination_is_stable_when_new_conversations_arrive(agent_client, tenant_a, channel):
    rows = [conversation(tenant_a, channel, minutes_ago=i) for i in range(30)]
    newest_first = [c.pk for c in rows]

    first = agent_client.get(inbox_url(tenant_a)).content.decode()
    cursor = re.search(r'hx-get="[^"]*cursor=([^"&]+)"', first).group(1)
    # A customer writes while the agent reads page one: a new row at the top.
    conversation(tenant_a, channel, minutes_ago=-1)
    second = htmx(agent_client, inbox_url(tenant_a) + f"?tab=all&cursor={cursor}")

    assert listed_ids(first) == newest_first[: selectors.LIST_PAGE_SIZE]
    assert listed_ids(second.content.decode()) == newest_first[selectors.LIST_PAGE_SIZE :]
    assert "<html" not in second.content.decode()
    assert "Load more" not in second.content.decode()


def test_rows_with_the_same_time_page_by_id(tenant_a, channel, agent):
    moment = timezone.now()
    rows = [
        ConversationFactory(tenant=tenant_a, channel=channel, last_message_at=moment)
        for _ in range(5)
    ]
    filters = selectors.InboxFilters()
    with tenant_context(tenant_a):
        first = selectors.inbox_page(user=agent, filters=filters, limit=2)
        second = selectors.inbox_page(
            user=agent, filters=filters, cursor=first.next_cursor, limit=2
        )
        third = selectors.inbox_page(
            user=agent, filters=filters, cursor=second.next_cursor, limit=2
        )

    seen = [c.pk for page in (first, second, third) for c in page.conversations]
    assert seen == sorted((c.pk for c in rows), reverse=True)
    assert third.next_cursor is None


def test_a_tampered_cursor_is_a_clear_400(agent_client, tenant_a):
    response = htmx(agent_client, inbox_url(tenant_a, cursor="not-a-cursor"))

    assert response.status_code == 400


def _list_queries(client, tenant, how_many, channel):
    colleagues = [member(tenant, role=Role.AGENT) for _ in range(3)]
    for i in range(how_many):
        assignee = colleagues[i % 4] if i % 4 < 3 else None
        conv = conversation(tenant, channel, minutes_ago=i, assignee=assignee, unread_count=i % 3)
        MessageFactory(tenant=tenant, conversation=conv)
    with CaptureQueriesContext(connection) as queries:
        response = client.get(inbox_url(tenant, q="a"))
        response = client.get(inbox_url(tenant))
    assert response.status_code == 200
    return len(queries)


def test_the_number_of_list_queries_does_not_grow_with_page_size(
    client, tenant_a, tenant_b, settings
):
    # Two businesses, one with 5 conversations and one with 50 (two full pages of 25 rows).
    small_channel = ChannelFactory(tenant=tenant_a)
    large_channel = ChannelFactory(tenant=tenant_b)
    small_agent = member(tenant_a, role=Role.AGENT)
    large_agent = member(tenant_b, role=Role.AGENT)

    client.force_login(small_agent)
    small = _list_queries(client, tenant_a, 5, small_channel)
    client.force_login(large_agent)
    large = _list_queries(client, tenant_b, 50, large_channel)

    assert large == small


def test_unread_counts_per_conversation_and_per_tab(agent_client, tenant_a, channel, agent):
    conversation(tenant_a, channel, assignee=agent, unread_count=3, minutes_ago=1)
    conversation(tenant_a, channel, unread_count=2, minutes_ago=2)
    conversation(tenant_a, channel, unread_count=0, minutes_ago=3)

    html = agent_client.get(inbox_url(tenant_a)).content.decode()

    counts = re.findall(r'class="unread-count">(\d+)<', html)
    assert counts == ["3", "2"]
    assert re.search(r'id="unread-mine">1<', html)
    assert re.search(r'id="unread-unassigned">1<', html)
    assert re.search(r'id="unread-all">2<', html)


def test_the_empty_inbox_links_owners_to_the_simulator(client, owner_a, tenant_a, channel):
    client.force_login(owner_a)

    html = client.get(inbox_url(tenant_a)).content.decode()

    simulator = reverse(
        "channels:simulator", kwargs={"tenant_slug": tenant_a.slug, "channel_id": channel.pk}
    )
    assert "No conversations here yet" in html
    assert simulator in html


# --- A thread ------------------------------------------------------------------------------------


def test_opening_a_thread_shows_messages_oldest_first_and_marks_it_read(
    agent_client, tenant_a, channel
):
    conv = conversation(tenant_a, channel, unread_count=2)
    now = timezone.now()
    first = MessageFactory(
        tenant=tenant_a, conversation=conv, body="Hello?", created_at=now - timedelta(minutes=5)
    )
    second = MessageFactory(
        tenant=tenant_a,
        conversation=conv,
        direction=Message.Direction.OUTBOUND,
        sender_kind=Message.SenderKind.AGENT,
        status=Message.Status.READ,
        body="Hi! How can we help?",
        created_at=now - timedelta(minutes=4),
    )
    note = MessageFactory(
        tenant=tenant_a,
        conversation=conv,
        direction=Message.Direction.NOTE,
        sender_kind=Message.SenderKind.AGENT,
        body="VIP customer",
        created_at=now - timedelta(minutes=3),
    )

    response = agent_client.get(thread_url(conv))
    html = response.content.decode()

    assert response.status_code == 200
    assert_no_third_party_code(html, "thread")
    order = [int(pk) for pk in re.findall(r'id="message-(\d+)"', html)]
    assert order == [first.pk, second.pk, note.pk]
    assert 'class="msg msg-inbound"' in html
    assert 'class="msg msg-outbound"' in html
    assert 'class="msg msg-note"' in html
    assert "tick tick-read" in html
    refresh(conv)
    assert conv.unread_count == 0


@pytest.mark.parametrize(
    ("status", "tick"),
    [
        (Message.Status.QUEUED, "◷"),
        (Message.Status.SENT, "✓"),
        (Message.Status.DELIVERED, "✓✓"),
        (Message.Status.READ, "✓✓"),
    ],
)
def test_delivery_ticks(agent_client, tenant_a, channel, status, tick):
    conv = conversation(tenant_a, channel)
    MessageFactory(
        tenant=tenant_a,
        conversation=conv,
        direction=Message.Direction.OUTBOUND,
        sender_kind=Message.SenderKind.AGENT,
        status=status,
    )

    html = agent_client.get(thread_url(conv)).content.decode()

    assert f'<span class="tick tick-{status}"' in html
    assert f'<span aria-hidden="true">{tick}</span>' in html


def test_a_failed_message_shows_the_reason_and_code(agent_client, tenant_a, channel):
    conv = conversation(tenant_a, channel)
    MessageFactory(
        tenant=tenant_a,
        conversation=conv,
        direction=Message.Direction.OUTBOUND,
        sender_kind=Message.SenderKind.AGENT,
        status=Message.Status.FAILED,
        error_code="21610",
        error_reason="The recipient unsubscribed (replied STOP).",
    )

    html = agent_client.get(thread_url(conv)).content.decode()

    assert "tick tick-failed" in html
    assert "The recipient unsubscribed (replied STOP)." in html
    assert "provider code 21610" in html


def test_earlier_messages_load_by_keyset(agent_client, tenant_a, channel):
    conv = conversation(tenant_a, channel)
    start = timezone.now() - timedelta(hours=2)
    messages = [
        MessageFactory(tenant=tenant_a, conversation=conv, created_at=start + timedelta(minutes=i))
        for i in range(selectors.THREAD_PAGE_SIZE + 5)
    ]

    html = agent_client.get(thread_url(conv)).content.decode()
    shown = [int(pk) for pk in re.findall(r'id="message-(\d+)"', html)]
    before = re.search(r'hx-get="[^"]*before=([^"&]+)"', html).group(1)
    earlier = htmx(agent_client, thread_url(conv) + f"?before={before}").content.decode()

    assert shown == [m.pk for m in messages[5:]]
    assert [int(pk) for pk in re.findall(r'id="message-(\d+)"', earlier)] == [
        m.pk for m in messages[:5]
    ]
    assert "Earlier messages" not in earlier


def test_attachments_link_to_the_media_view(agent_client, tenant_a, channel):
    conv = conversation(tenant_a, channel)
    message = MessageFactory(
        tenant=tenant_a,
        conversation=conv,
        media=[{"url": "https://example.com/x.png", "content_type": "image/png"}],
    )

    html = agent_client.get(thread_url(conv)).content.decode()
    media_url = reverse(
        "channels:inbox_media",
        kwargs={"tenant_slug": tenant_a.slug, "conversation_id": conv.pk, "message_id": message.pk},
    )
    assert f"{media_url}?index=0" in html
    # The sandbox keeps no media: the provider's refusal is shown in words, not a crash.
    response = agent_client.get(f"{media_url}?index=0")
    assert response.status_code == 502
    assert "could not be fetched" in response.content.decode()
    assert agent_client.get(f"{media_url}?index=1").status_code == 404


def test_media_is_fetched_through_the_provider_with_its_credentials(
    agent_client, tenant_a, provider_stub
):
    twilio = ChannelFactory(tenant=tenant_a, twilio=True)
    provider_stub.twilio_account(twilio.twilio_account_sid, twilio.twilio_auth_token)
    url = provider_stub.twilio_media(twilio.twilio_account_sid, b"\x89PNG...", "image/png")
    conv = conversation(tenant_a, twilio)
    message = MessageFactory(
        tenant=tenant_a, conversation=conv, media=[{"url": url, "content_type": "image/png"}]
    )
    media_url = reverse(
        "channels:inbox_media",
        kwargs={"tenant_slug": tenant_a.slug, "conversation_id": conv.pk, "message_id": message.pk},
    )

    response = agent_client.get(media_url)

    assert response.status_code == 200
    assert response.content == b"\x89PNG..."
    assert response["Content-Type"] == "image/png"
    assert response["Content-Disposition"].startswith("inline")


# --- Replying ------------------------------------------------------------------------------------


def reply(client, conv, body="We open at nine.", key=None, hx=True):
    data = {"body": body, "idempotency_key": key or str(uuid.uuid4())}
    headers = {"HX-Request": "true"} if hx else {}
    return client.post(thread_url(conv, "channels:inbox_reply"), data, headers=headers)


def outbound(tenant, conv):
    with tenant_context(tenant):
        return list(Message.objects.filter(conversation=conv, direction=Message.Direction.OUTBOUND))


def test_a_reply_is_queued_with_its_author_and_delivered(
    agent_client, tenant_a, channel, agent, django_capture_on_commit_callbacks
):
    conv = conversation(tenant_a, channel)

    with django_capture_on_commit_callbacks(execute=True):
        response = reply(agent_client, conv, "We open at nine.")

    [message] = outbound(tenant_a, conv)
    html = response.content.decode()
    assert response.status_code == 200
    assert message.body == "We open at nine."
    assert message.author == agent
    assert message.sender_kind == Message.SenderKind.AGENT
    assert message.purpose == Purpose.TRANSACTIONAL
    assert message.status == Message.Status.SENT  # the sandbox accepted it
    # The fresh reply box and the new message, appended to the thread.
    assert 'id="composer"' in html
    assert 'hx-swap-oob="beforeend:#thread-messages"' in html
    assert f'id="message-{message.pk}"' in html


def test_a_reply_without_htmx_redirects_back_to_the_thread(agent_client, tenant_a, channel):
    conv = conversation(tenant_a, channel)

    response = reply(agent_client, conv, hx=False)

    assert response.status_code == 302
    assert response["Location"].startswith(thread_url(conv))
    assert len(outbound(tenant_a, conv)) == 1


def test_a_double_submit_sends_once(agent_client, tenant_a, channel):
    conv = conversation(tenant_a, channel)
    key = str(uuid.uuid4())

    reply(agent_client, conv, "On my way", key=key)
    reply(agent_client, conv, "On my way", key=key)

    assert len(outbound(tenant_a, conv)) == 1


def test_every_rendered_reply_box_has_a_new_key(agent_client, tenant_a, channel):
    conv = conversation(tenant_a, channel)

    keys = {
        re.search(
            r'name="idempotency_key" value="([^"]+)"',
            agent_client.get(thread_url(conv)).content.decode(),
        ).group(1)
        for _ in range(2)
    }

    assert len(keys) == 2


def test_an_opted_out_customer_cannot_be_replied_to_and_the_text_is_kept(
    agent_client, tenant_a, channel
):
    conv = conversation(tenant_a, channel)
    with tenant_context(tenant_a):
        record_consent(
            contact=conv.contact,
            media=[channel.medium],
            purposes=[Purpose.TRANSACTIONAL, Purpose.MARKETING],
            action=ConsentAction.WITHDRAWN,
            source=ConsentSource.KEYWORD,
            evidence="STOP",
        )

    response = reply(agent_client, conv, "Are you still interested?")
    html = response.content.decode()

    assert "The customer opted out of messages" in html
    assert "Are you still interested?" in html
    assert outbound(tenant_a, conv) == []
    # Without HTMX: the whole page with the error, not a redirect.
    plain = reply(agent_client, conv, "Are you still interested?", hx=False)
    assert plain.status_code == 400
    assert "The customer opted out of messages" in plain.content.decode()


def test_an_empty_reply_is_a_form_error(agent_client, tenant_a, channel):
    conv = conversation(tenant_a, channel)

    html = reply(agent_client, conv, "   ").content.decode()

    assert "Write a message first." in html
    assert outbound(tenant_a, conv) == []


def test_outside_the_window_the_reply_box_becomes_a_template_picker(
    agent_client, tenant_a, channel
):
    conv = conversation(tenant_a, channel, last_inbound_at=timezone.now() - timedelta(days=3))
    template = MessageTemplateFactory(
        tenant=tenant_a, channel=channel, name="order_ready", body="Hello {{1}}, order {{2}}."
    )
    MessageTemplateFactory(
        tenant=tenant_a, channel=channel, name="draft", status="pending", body="Not yet"
    )

    html = agent_client.get(thread_url(conv)).content.decode()

    assert "The customer last wrote 3\xa0days ago" in html
    assert "WhatsApp allows only approved templates until they write again." in html
    assert 'name="template"' in html
    assert "order_ready" in html and "draft" not in html
    assert f'name="var-{template.pk}-1"' in html
    assert 'id="reply-body"' not in html


def test_sending_a_template_fills_its_variables(
    agent_client, tenant_a, channel, agent, django_capture_on_commit_callbacks
):
    conv = conversation(tenant_a, channel, last_inbound_at=timezone.now() - timedelta(days=3))
    with tenant_context(tenant_a):
        record_consent(
            contact=conv.contact,
            media=[channel.medium],
            purposes=[Purpose.TRANSACTIONAL],
            action=ConsentAction.GRANTED,
            source=ConsentSource.AGENT,
            evidence="Signed the form at the front desk",
        )
    template = MessageTemplateFactory(
        tenant=tenant_a, channel=channel, name="order_ready", body="Hello {{1}}, order {{2}}."
    )

    with django_capture_on_commit_callbacks(execute=True):
        response = agent_client.post(
            thread_url(conv, "channels:inbox_template"),
            {
                "template": template.pk,
                "idempotency_key": str(uuid.uuid4()),
                f"var-{template.pk}-1": "Ana",
                f"var-{template.pk}-2": "A-42",
            },
            headers={"HX-Request": "true"},
        )

    [message] = outbound(tenant_a, conv)
    assert response.status_code == 200
    assert message.template_id == template.pk
    assert message.template_variables == {"1": "Ana", "2": "A-42"}
    assert message.body == "Hello Ana, order A-42."
    assert message.author == agent


def test_a_template_with_a_missing_variable_is_a_form_error(agent_client, tenant_a, channel):
    conv = conversation(tenant_a, channel, written=False)
    template = MessageTemplateFactory(tenant=tenant_a, channel=channel)

    html = agent_client.post(
        thread_url(conv, "channels:inbox_template"),
        {
            "template": template.pk,
            "idempotency_key": str(uuid.uuid4()),
            f"var-{template.pk}-1": "Ana",
        },
        headers={"HX-Request": "true"},
    ).content.decode()

    assert "needs a value for {{2}}" in html
    assert 'value="Ana"' in html
    assert outbound(tenant_a, conv) == []


# --- Notes, assignment, status -------------------------------------------------------------------


def test_a_note_is_shown_to_the_team_and_never_sent(
    agent_client, tenant_a, channel, agent, django_capture_on_commit_callbacks
):
    conv = conversation(tenant_a, channel)

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = agent_client.post(
            thread_url(conv, "channels:inbox_note"),
            {"body": "Call her back after 5pm"},
            headers={"HX-Request": "true"},
        )

    with tenant_context(tenant_a):
        [note] = Message.objects.filter(conversation=conv)
    assert response.status_code == 200
    assert note.direction == Message.Direction.NOTE
    assert note.author == agent
    assert note.provider_message_id == ""
    assert note.status == Message.Status.RECEIVED
    assert callbacks == []  # no delivery was enqueued
    assert "Internal note" in response.content.decode()


def test_assign_to_me_to_a_colleague_and_unassign(agent_client, tenant_a, channel, agent):
    colleague = member(tenant_a, role=Role.AGENT, full_name="Casey Colleague")
    conv = conversation(tenant_a, channel)
    url = thread_url(conv, "channels:inbox_assign")

    agent_client.post(url, {"assignee": "me"})
    refresh(conv)
    assert conv.assignee == agent

    response = agent_client.post(url, {"assignee": str(colleague.pk)}, follow=True)
    refresh(conv)
    assert conv.assignee == colleague
    assert "Assigned to Casey Colleague" in response.content.decode()

    agent_client.post(url, {"assignee": ""})
    refresh(conv)
    assert conv.assignee is None


def test_assigning_to_someone_outside_the_business_is_refused(
    agent_client, tenant_a, tenant_b, channel
):
    outsider = member(tenant_b)
    conv = conversation(tenant_a, channel)

    response = agent_client.post(
        thread_url(conv, "channels:inbox_assign"), {"assignee": str(outsider.pk)}, follow=True
    )

    refresh(conv)
    assert conv.assignee is None
    assert "Choose a member of the team." in response.content.decode()


def test_resolve_pending_and_reopen(agent_client, tenant_a, channel):
    conv = conversation(tenant_a, channel)
    url = thread_url(conv, "channels:inbox_status")

    agent_client.post(url, {"status": "resolved"})
    refresh(conv)
    assert conv.status == Conversation.Status.RESOLVED and conv.resolved_at is not None

    agent_client.post(url, {"status": "open"})
    refresh(conv)
    assert conv.status == Conversation.Status.OPEN and conv.resolved_at is None

    agent_client.post(url, {"status": "pending"})
    refresh(conv)
    assert conv.status == Conversation.Status.PENDING

    response = agent_client.post(url, {"status": "gone"}, follow=True)
    refresh(conv)
    assert conv.status == Conversation.Status.PENDING
    assert "Choose open, pending or resolved." in response.content.decode()


# --- The contact panel ---------------------------------------------------------------------------


def test_the_contact_panel_shows_consent_and_the_gate(agent_client, tenant_a, channel):
    contact = ContactFactory(tenant=tenant_a, name="Ana Lima", phone="+14155550123")
    conv = conversation(tenant_a, channel, contact=contact)
    other = conversation(
        tenant_a, ChannelFactory(tenant=tenant_a, name="SMS line"), contact=contact
    )
    with tenant_context(tenant_a):
        record_consent(
            contact=contact,
            media=[channel.medium],
            purposes=[Purpose.MARKETING],
            action=ConsentAction.WITHDRAWN,
            source=ConsentSource.KEYWORD,
            evidence="Replied STOP to a promotion",
        )

    html = agent_client.get(thread_url(conv)).content.decode()

    assert "+1 415-555-0123" in html
    assert "Replied STOP to a promotion" in html
    assert "The customer stopped marketing messages" in html
    assert "A reply to the customer" in html  # transactional: within the window
    assert thread_url(other) in html


def test_recording_consent_from_the_panel_appends_an_event(agent_client, tenant_a, channel, agent):
    conv = conversation(tenant_a, channel)

    response = agent_client.post(
        thread_url(conv, "channels:inbox_consent"),
        {
            "medium": "whatsapp",
            "purposes": "marketing",
            "action": "granted",
            "evidence": "Asked for offers at the front desk, 3 May",
        },
        follow=True,
    )

    with tenant_context(tenant_a):
        [event] = ConsentEvent.objects.filter(contact=conv.contact)
    assert event.source == ConsentSource.AGENT
    assert event.recorded_by == agent
    assert event.purpose == Purpose.MARKETING and event.action == ConsentAction.GRANTED
    assert "Consent recorded." in response.content.decode()


def test_consent_without_evidence_is_refused(agent_client, tenant_a, channel):
    conv = conversation(tenant_a, channel)

    response = agent_client.post(
        thread_url(conv, "channels:inbox_consent"),
        {"medium": "whatsapp", "purposes": "both", "action": "granted", "evidence": ""},
    )

    assert response.status_code == 400
    assert "Say how you know" in response.content.decode()
    with tenant_context(tenant_a):
        assert not ConsentEvent.objects.exists()


# --- Live updates --------------------------------------------------------------------------------


def thread_cursor(html):
    return re.search(r'id="thread-poll"[^>]*\?cursor=([^"]+)"', html).group(1)


def test_the_thread_poll_returns_new_messages_and_status_changes_only(
    agent_client, tenant_a, channel
):
    conv = conversation(tenant_a, channel, unread_count=1)
    sent = MessageFactory(
        tenant=tenant_a,
        conversation=conv,
        direction=Message.Direction.OUTBOUND,
        sender_kind=Message.SenderKind.AGENT,
        status=Message.Status.SENT,
        status_changed_at=timezone.now() - timedelta(seconds=30),
        created_at=timezone.now() - timedelta(seconds=30),
    )
    page = agent_client.get(thread_url(conv)).content.decode()
    updates = thread_url(conv, "channels:inbox_thread_updates")
    cursor = thread_cursor(page)

    idle = htmx(agent_client, f"{updates}?cursor={cursor}")
    assert idle.status_code == 204
    assert idle.content == b""

    # The customer writes again and the earlier reply is delivered.
    new = MessageFactory(tenant=tenant_a, conversation=conv, body="Thanks!")
    with tenant_context(tenant_a):
        Message.objects.filter(pk=sent.pk).update(
            status=Message.Status.DELIVERED, status_changed_at=timezone.now()
        )
        Conversation.objects.filter(pk=conv.pk).update(unread_count=1)

    changed = htmx(agent_client, f"{updates}?cursor={cursor}")
    html = changed.content.decode()
    assert changed.status_code == 200
    assert f'id="message-{new.pk}"' in html
    assert f'id="message-{sent.pk}" data-key="message-{sent.pk}" hx-swap-oob="true"' in html
    assert "tick tick-delivered" in html
    refresh(conv)
    assert conv.unread_count == 0  # the thread is open: what arrived is read

    # With the cursor the response carries, nothing is new any more.
    again = htmx(agent_client, f"{updates}?cursor={thread_cursor(html)}")
    assert again.status_code == 204


def test_an_idle_thread_poll_costs_two_queries(agent_client, tenant_a, channel):
    conv = conversation(tenant_a, channel)
    MessageFactory(tenant=tenant_a, conversation=conv)
    cursor = thread_cursor(agent_client.get(thread_url(conv)).content.decode())
    updates = thread_url(conv, "channels:inbox_thread_updates")
    htmx(agent_client, f"{updates}?cursor={cursor}")  # warm the session

    with CaptureQueriesContext(connection) as queries:
        response = htmx(agent_client, f"{updates}?cursor={cursor}")

    assert response.status_code == 204
    ours = [q["sql"] for q in queries if "channels_app_" in q["sql"]]
    assert len(ours) == 2, ours


def test_a_bad_thread_cursor_is_a_400(agent_client, tenant_a, channel):
    conv = conversation(tenant_a, channel)

    response = htmx(agent_client, thread_url(conv, "channels:inbox_thread_updates") + "?cursor=x")

    assert response.status_code == 400


def list_since(html):
    return re.search(r'id="list-poll"[^>]*since=([^"&]+)', html).group(1)


def test_the_list_poll_returns_changed_rows_and_tab_totals(agent_client, tenant_a, channel):
    quiet = conversation(tenant_a, channel, minutes_ago=10)
    page = agent_client.get(inbox_url(tenant_a)).content.decode()
    updates = reverse("channels:inbox_updates", kwargs={"tenant_slug": tenant_a.slug})
    since = list_since(page)

    idle = htmx(agent_client, f"{updates}?tab=all&since={since}")
    assert idle.status_code == 204

    busy = conversation(tenant_a, channel, unread_count=1)
    response = htmx(agent_client, f"{updates}?tab=all&since={since}")
    html = response.content.decode()

    assert response.status_code == 200
    assert listed_ids(html) == [busy.pk]
    assert quiet.pk not in listed_ids(html)
    assert 'id="unread-all" hx-swap-oob="true">1<' in html
    assert htmx(agent_client, f"{updates}?tab=all&since={list_since(html)}").status_code == 204


def test_the_list_poll_respects_the_tab(agent_client, tenant_a, channel, agent):
    page = agent_client.get(inbox_url(tenant_a, tab="mine")).content.decode()
    updates = reverse("channels:inbox_updates", kwargs={"tenant_slug": tenant_a.slug})
    conversation(tenant_a, channel)  # unassigned: not in "mine"

    response = htmx(agent_client, f"{updates}?tab=mine&since={list_since(page)}")

    assert response.status_code == 204


# --- Isolation ---------------------------------------------------------------------------------


def test_an_agent_of_another_business_gets_404_on_every_inbox_url(client, tenant_a, tenant_b):
    conv = conversation(tenant_a, ChannelFactory(tenant=tenant_a))
    message = MessageFactory(tenant=tenant_a, conversation=conv)
    client.force_login(member(tenant_b, role=Role.AGENT))
    kwargs = {"tenant_slug": tenant_b.slug, "conversation_id": conv.pk}

    for name in ("inbox_thread", "inbox_thread_updates"):
        assert client.get(reverse(f"channels:{name}", kwargs=kwargs)).status_code == 404
    for name in ("inbox_reply", "inbox_note", "inbox_assign", "inbox_status", "inbox_consent"):
        assert client.post(reverse(f"channels:{name}", kwargs=kwargs), {}).status_code == 404
    media = reverse("channels:inbox_media", kwargs=kwargs | {"message_id": message.pk})
    assert client.get(media).status_code == 404
