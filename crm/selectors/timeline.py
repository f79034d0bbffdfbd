"""One activity timeline per contact: messages, deals and their stage changes, tasks,
appointments, notes and consent events, newest first, in pages.

Each source is read with its own small query (at most a page and a bit from each), merged in
Python and cut at the page size; the cursor is the last item's (time, kind, id), so the next
page starts exactly after it whatever the sources hold.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from django.utils.dateparse import parse_datetime

from crm.models import Appointment, Contact, Deal, DealStageChange, Note, Task

PAGE_SIZE = 30

# Kinds, in the order ties at the same instant are shown (higher first).
KINDS = ("message", "deal", "stage", "task", "appointment", "note", "consent")


@dataclass(frozen=True)
class TimelineItem:
    kind: str
    at: datetime.datetime
    id: int
    obj: object

    @property
    def key(self) -> tuple:
        return (self.at, KINDS.index(self.kind), self.id)

    @property
    def template(self) -> str:
        return f"crm/contact_page/timeline/_{self.kind}.html"


@dataclass
class TimelinePage:
    items: list[TimelineItem]
    next_cursor: str | None


def _sources(contact: Contact, before: datetime.datetime | None, limit: int):
    from channels_app.models import Message
    from privacy.models import ConsentEvent

    def cut(queryset, field):
        if before is not None:
            queryset = queryset.filter(**{f"{field}__lte": before})
        return queryset.order_by(f"-{field}", "-id")[:limit]

    yield (
        "message",
        "created_at",
        cut(
            Message.objects.filter(conversation__contact=contact).select_related(
                "channel", "author"
            ),
            "created_at",
        ),
    )
    yield (
        "deal",
        "created_at",
        cut(Deal.objects.filter(contact=contact).select_related("stage", "pipeline"), "created_at"),
    )
    yield (
        "stage",
        "changed_at",
        cut(
            DealStageChange.objects.filter(
                deal__contact=contact, from_stage__isnull=False
            ).select_related("deal", "from_stage", "to_stage", "changed_by"),
            "changed_at",
        ),
    )
    yield (
        "task",
        "created_at",
        cut(Task.objects.filter(contact=contact).select_related("assignee"), "created_at"),
    )
    yield (
        "appointment",
        "starts_at",
        cut(Appointment.objects.filter(contact=contact).select_related("owner"), "starts_at"),
    )
    yield (
        "note",
        "created_at",
        cut(Note.objects.filter(contact=contact).select_related("author"), "created_at"),
    )
    yield (
        "consent",
        "created_at",
        cut(
            ConsentEvent.objects.filter(contact=contact).select_related("recorded_by", "channel"),
            "created_at",
        ),
    )


def encode(item: TimelineItem) -> str:
    return f"{item.at.isoformat()}~{item.kind}~{item.id}"


def decode(cursor: str):
    try:
        at, kind, pk = cursor.split("~")
        moment = parse_datetime(at)
        if moment is None or kind not in KINDS:
            return None
        return (moment, KINDS.index(kind), int(pk))
    except ValueError:
        return None


def timeline(contact: Contact, *, cursor: str = "", size: int = PAGE_SIZE) -> TimelinePage:
    position = decode(cursor) if cursor else None
    before = position[0] if position else None
    items: list[TimelineItem] = []
    for kind, field, queryset in _sources(contact, before, size + 1 + (5 if position else 0)):
        for obj in queryset:
            item = TimelineItem(kind=kind, at=getattr(obj, field), id=obj.pk, obj=obj)
            if position is None or item.key < position:
                items.append(item)
    items.sort(key=lambda item: item.key, reverse=True)
    next_cursor = encode(items[size - 1]) if len(items) > size else None
    return TimelinePage(items=items[:size], next_cursor=next_cursor)
