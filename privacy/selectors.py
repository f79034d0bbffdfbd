"""Reads for the privacy centre: consent numbers and their chart over time."""

from __future__ import annotations

import dataclasses
import datetime

from django.db.models import Count
from django.db.models.functions import TruncDate
from django.utils import timezone

from channels_app.models import Medium
from privacy.models import ConsentAction, ConsentEvent, ConsentState, Purpose


@dataclasses.dataclass(frozen=True)
class ConsentRow:
    medium: str
    medium_label: str
    purpose: str
    purpose_label: str
    opted_in: int
    opted_out: int


def consent_numbers() -> list[ConsentRow]:
    """Contacts opted in and out, per medium and purpose, in the active business (from the
    derived state the gate reads)."""
    counts = {
        (row["medium"], row["purpose"], row["action"]): row["n"]
        for row in ConsentState.objects.values("medium", "purpose", "action")
        .annotate(n=Count("id"))
        .order_by()
    }
    return [
        ConsentRow(
            medium=medium,
            medium_label=str(medium_label),
            purpose=purpose,
            purpose_label=str(purpose_label),
            opted_in=counts.get((medium, purpose, ConsentAction.GRANTED), 0),
            opted_out=counts.get((medium, purpose, ConsentAction.WITHDRAWN), 0),
        )
        for medium, medium_label in Medium.choices
        for purpose, purpose_label in Purpose.choices
    ]


@dataclasses.dataclass(frozen=True)
class ConsentChart:
    """Grants and withdrawals per day, with the SVG geometry the template draws."""

    days: list[datetime.date]
    granted: list[int]
    withdrawn: list[int]
    width: int
    height: int
    granted_points: str
    withdrawn_points: str
    top: int  # the largest daily count (the y axis' top label)

    @property
    def total_granted(self) -> int:
        return sum(self.granted)

    @property
    def total_withdrawn(self) -> int:
        return sum(self.withdrawn)

    @property
    def first_day(self) -> datetime.date:
        return self.days[0]

    @property
    def last_day(self) -> datetime.date:
        return self.days[-1]


CHART_WIDTH = 600
CHART_HEIGHT = 160
CHART_PADDING = 8


def consent_chart(*, zone, days: int = 30, today: datetime.date | None = None) -> ConsentChart:
    """Consent events of the last `days` days (the business's days), as two polylines."""
    today = today or timezone.localdate(timezone=zone)
    first = today - datetime.timedelta(days=days - 1)
    start = datetime.datetime.combine(first, datetime.time.min, tzinfo=zone)
    per_day = {
        (row["day"], row["action"]): row["n"]
        for row in ConsentEvent.objects.filter(created_at__gte=start)
        .annotate(day=TruncDate("created_at", tzinfo=zone))
        .values("day", "action")
        .annotate(n=Count("id"))
        .order_by()
    }
    dates = [first + datetime.timedelta(days=i) for i in range(days)]
    granted = [per_day.get((d, ConsentAction.GRANTED), 0) for d in dates]
    withdrawn = [per_day.get((d, ConsentAction.WITHDRAWN), 0) for d in dates]
    top = max([*granted, *withdrawn, 1])
    return ConsentChart(
        days=dates,
        granted=granted,
        withdrawn=withdrawn,
        width=CHART_WIDTH,
        height=CHART_HEIGHT,
        granted_points=_points(granted, top),
        withdrawn_points=_points(withdrawn, top),
        top=top,
    )


def _points(values: list[int], top: int) -> str:
    inner_w = CHART_WIDTH - 2 * CHART_PADDING
    inner_h = CHART_HEIGHT - 2 * CHART_PADDING
    step = inner_w / max(len(values) - 1, 1)
    return " ".join(
        f"{CHART_PADDING + i * step:.1f},{CHART_PADDING + inner_h - inner_h * v / top:.1f}"
        for i, v in enumerate(values)
    )
