"""Reads of the shared inbox: the conversation list, a thread, its live updates, the contact panel.

Lists page with keysets, never OFFSET: the list is ordered by (last_message_at, id) and a thread
by (created_at, id), and a cursor names the last row shown. New rows then never shift a page
the agent is reading, and the cost of a page does not grow with how far down it is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import Count, Exists, OuterRef, Q
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from channels_app.models import Channel, Conversation, Message, MessageTemplate

LIST_PAGE_SIZE = 25
THREAD_PAGE_SIZE = 40

TABS = ("mine", "unassigned", "all")
# "" (the default) is every conversation that still needs someone: open and pending.
STATUS_FILTERS = ("", "open", "pending", "resolved", "any")


class BadCursor(ValueError):
    """A cursor that was not produced by `encode_cursor` (tampered or truncated)."""


def parse_moment(value: str) -> datetime | None:
    """An ISO timestamp from a cursor, always aware (a naive one is read as UTC)."""
    try:
        moment = parse_datetime(value or "")
    except ValueError:
        return None
    if moment is not None and timezone.is_naive(moment):
        moment = timezone.make_aware(moment, timezone.utc)
    return moment


def encode_cursor(moment: datetime, pk: int) -> str:
    return f"{moment.isoformat()}~{pk}"


def decode_cursor(value: str) -> tuple[datetime, int]:
    moment_text, sep, pk_text = (value or "").rpartition("~")
    moment = parse_moment(moment_text) if sep else None
    if moment is None or not pk_text.isdigit():
        raise BadCursor(value)
    return moment, int(pk_text)


# --- The conversation list ----------------------------------------------------------------------


@dataclass(frozen=True)
class InboxFilters:
    tab: str = "all"
    status: str = ""
    channel_id: int | None = None
    query: str = ""

    @classmethod
    def from_params(cls, params) -> InboxFilters:
        """Filters from query parameters; unknown values fall back to the defaults."""
        tab = params.get("tab", "")
        status = params.get("status", "")
        channel = params.get("channel", "")
        return cls(
            tab=tab if tab in TABS else "all",
            status=status if status in STATUS_FILTERS else "",
            channel_id=int(channel) if channel.isdigit() else None,
            query=params.get("q", "").strip()[:100],
        )

    def as_params(self) -> dict[str, str]:
        params = {"tab": self.tab}
        if self.status:
            params["status"] = self.status
        if self.channel_id:
            params["channel"] = str(self.channel_id)
        if self.query:
            params["q"] = self.query
        return params


@dataclass
class InboxPage:
    conversations: list[Conversation]
    next_cursor: str | None
    # The newest last_message_at among the rows: where live updates start looking.
    changes_cursor: str


def _tab_q(tab: str, user) -> Q:
    if tab == "mine":
        return Q(assignee=user)
    if tab == "unassigned":
        return Q(assignee__isnull=True)
    return Q()


def _status_q(status: str) -> Q:
    if status == "any":
        return Q()
    if status:
        return Q(status=status)
    return Q(status__in=[Conversation.Status.OPEN, Conversation.Status.PENDING])


def _search_q(query: str) -> Q:
    """Contact name or phone, or the text of any message of the conversation.

    The name and phone tests read the joined contact row; the message text is one EXISTS
    probe per candidate conversation through the (conversation, created_at) index, so the
    query stays a single statement whatever the page size.
    """
    if not query:
        return Q()
    matches = Q(contact__name__icontains=query) | Q(contact__email__icontains=query)
    digits = re.sub(r"\D", "", query)
    if len(digits) >= 3:
        # Phones are stored in E.164; people type them with spaces, dashes and brackets.
        matches |= Q(contact__phone__contains=digits)
    matches |= Q(Exists(Message.objects.filter(conversation=OuterRef("pk"), body__icontains=query)))
    return matches


def _filtered(filters: InboxFilters, user):
    queryset = Conversation.objects.filter(_tab_q(filters.tab, user), _status_q(filters.status))
    if filters.channel_id:
        queryset = queryset.filter(channel_id=filters.channel_id)
    return queryset.filter(_search_q(filters.query))


def _with_row_data(queryset):
    # Everything a list row shows comes from these joined rows: one query per page.
    return queryset.select_related("contact", "channel", "assignee").order_by(
        "-last_message_at", "-id"
    )


def inbox_page(
    *, user, filters: InboxFilters, cursor: str = "", limit: int = LIST_PAGE_SIZE
) -> InboxPage:
    """One page of the list, newest activity first, after `cursor` (raises BadCursor)."""
    queryset = _with_row_data(_filtered(filters, user))
    if cursor:
        moment, pk = decode_cursor(cursor)
        queryset = queryset.filter(
            Q(last_message_at__lt=moment) | Q(last_message_at=moment, id__lt=pk)
        )
    rows = list(queryset[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = encode_cursor(rows[-1].last_message_at, rows[-1].pk) if more else None
    # Live updates look above the first page; a later page (no scripts) starts from now.
    newest = rows[0].last_message_at if rows and not cursor else timezone.now()
    return InboxPage(conversations=rows, next_cursor=next_cursor, changes_cursor=newest.isoformat())


def changed_conversations(*, user, filters: InboxFilters, since: datetime, limit: int = 50):
    """Rows of the list with activity after `since`, newest first (the list's live update)."""
    return list(_with_row_data(_filtered(filters, user).filter(last_message_at__gt=since))[:limit])


def unread_totals(*, user, filters: InboxFilters) -> dict[str, int]:
    """Per tab, how many conversations have unread messages (with the status/channel filter)."""
    queryset = Conversation.objects.filter(_status_q(filters.status), unread_count__gt=0)
    if filters.channel_id:
        queryset = queryset.filter(channel_id=filters.channel_id)
    return queryset.aggregate(
        mine=Count("id", filter=_tab_q("mine", user)),
        unassigned=Count("id", filter=_tab_q("unassigned", user)),
        all=Count("id"),
    )


def inbox_channels() -> list[Channel]:
    return list(Channel.objects.all())


# --- A thread ----------------------------------------------------------------------------------


def conversation_for_thread(*, conversation_id: int) -> Conversation | None:
    return (
        Conversation.objects.select_related("contact", "channel", "assignee")
        .filter(pk=conversation_id)
        .first()
    )


@dataclass
class ThreadPage:
    messages: list[Message]
    earlier_cursor: str | None


def _thread_rows(queryset):
    # The bot's run records: "why the bot said this" and hand-off notes in the thread.
    return queryset.select_related("author", "template", "answered_by_run__usage", "bot_run")


def thread_page(
    *, conversation: Conversation, before: str = "", limit: int = THREAD_PAGE_SIZE
) -> ThreadPage:
    """The latest `limit` messages before `before` (raises BadCursor), oldest first."""
    queryset = Message.objects.filter(conversation=conversation)
    if before:
        moment, pk = decode_cursor(before)
        queryset = queryset.filter(Q(created_at__lt=moment) | Q(created_at=moment, id__lt=pk))
    rows = list(_thread_rows(queryset).order_by("-created_at", "-id")[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    rows.reverse()
    earlier = encode_cursor(rows[0].created_at, rows[0].pk) if more else None
    return ThreadPage(messages=rows, earlier_cursor=earlier)


@dataclass
class ThreadCursor:
    """What the open thread has shown: the newest message id and the latest status change."""

    last_id: int = 0
    changed_at: datetime | None = None

    def encode(self) -> str:
        moment = self.changed_at.isoformat() if self.changed_at else ""
        return f"{moment}~{self.last_id}"

    @classmethod
    def decode(cls, value: str) -> ThreadCursor:
        moment_text, sep, pk_text = (value or "").rpartition("~")
        if not sep or not pk_text.isdigit():
            raise BadCursor(value)
        moment = parse_moment(moment_text) if moment_text else None
        if moment_text and moment is None:
            raise BadCursor(value)
        return cls(last_id=int(pk_text), changed_at=moment)

    @classmethod
    def after(cls, messages: list[Message], previous: ThreadCursor | None = None) -> ThreadCursor:
        cursor = previous or cls()
        last_id = max([cursor.last_id, *(m.pk for m in messages)])
        moments = [m.status_changed_at for m in messages]
        if cursor.changed_at:
            moments.append(cursor.changed_at)
        return cls(last_id=last_id, changed_at=max(moments) if moments else None)


@dataclass
class ThreadChanges:
    new: list[Message] = field(default_factory=list)
    changed: list[Message] = field(default_factory=list)
    cursor: ThreadCursor = field(default_factory=ThreadCursor)

    def __bool__(self) -> bool:
        return bool(self.new or self.changed)


def thread_changes(*, conversation: Conversation, cursor: ThreadCursor) -> ThreadChanges:
    """Messages added after the cursor, and shown ones whose delivery status moved since.

    One query; an idle thread answers with nothing.
    """
    changed_q = Q(id__lte=cursor.last_id)
    if cursor.changed_at:
        changed_q &= Q(status_changed_at__gt=cursor.changed_at)
    else:
        changed_q &= Q(pk__in=[])
    rows = list(
        _thread_rows(
            Message.objects.filter(conversation=conversation).filter(
                Q(id__gt=cursor.last_id) | changed_q
            )
        ).order_by("created_at", "id")[:200]
    )
    return ThreadChanges(
        new=[m for m in rows if m.pk > cursor.last_id],
        changed=[m for m in rows if m.pk <= cursor.last_id],
        cursor=ThreadCursor.after(rows, cursor),
    )


def approved_templates(*, channel: Channel) -> list[MessageTemplate]:
    return list(
        MessageTemplate.objects.filter(channel=channel, status=MessageTemplate.Status.APPROVED)
    )


# --- The contact panel ---------------------------------------------------------------------------


@dataclass
class ConsentRow:
    medium: str
    medium_label: str
    purpose: str
    purpose_label: str
    state: object | None  # privacy.models.ConsentState


@dataclass
class ContactPanel:
    contact: object
    phone_display: str
    consent: list[ConsentRow]
    events: list
    transactional: object  # privacy.gate.Decision
    marketing: object
    other_conversations: list[Conversation]


def contact_panel(*, conversation: Conversation) -> ContactPanel:
    from channels_app.models import Medium
    from crm.phones import format_phone
    from privacy.gate import can_message, consent_states
    from privacy.models import ConsentEvent, Purpose

    contact = conversation.contact
    rows = []
    for medium in Medium:
        states = consent_states(contact, medium.value)
        for purpose in Purpose:
            rows.append(
                ConsentRow(
                    medium=medium.value,
                    medium_label=medium.label,
                    purpose=purpose.value,
                    purpose_label=purpose.label,
                    state=states.get(purpose.value),
                )
            )
    events = list(
        ConsentEvent.objects.filter(contact=contact)
        .select_related("recorded_by", "channel")
        .order_by("-created_at", "-id")[:5]
    )
    others = list(
        Conversation.objects.filter(contact=contact)
        .exclude(pk=conversation.pk)
        .select_related("channel")
        .order_by("-last_message_at", "-id")[:10]
    )
    return ContactPanel(
        contact=contact,
        phone_display=format_phone(contact.phone) if contact.phone else "",
        consent=rows,
        events=events,
        transactional=can_message(contact, conversation.channel, Purpose.TRANSACTIONAL),
        marketing=can_message(contact, conversation.channel, Purpose.MARKETING),
        other_conversations=others,
    )


def assignable_members(*, tenant):
    from tenants.models import Membership

    return list(
        Membership.objects.filter(tenant=tenant)
        .select_related("user")
        .order_by("user__full_name", "user__email")
    )
