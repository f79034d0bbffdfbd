"""Task reads: "My tasks" grouped by when they are due, in the business's time zone."""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from django.db.models import QuerySet
from django.utils import timezone

from crm.models import Task

DONE_SHOWN = 20


@dataclass
class TaskGroups:
    overdue: list[Task]
    today: list[Task]
    upcoming: list[Task]
    done: list[Task]

    @property
    def open_count(self) -> int:
        return len(self.overdue) + len(self.today) + len(self.upcoming)


def tasks_for(*, assignee=None, everyone: bool = False) -> QuerySet[Task]:
    queryset = Task.objects.select_related("contact", "deal", "assignee")
    if not everyone:
        queryset = queryset.filter(assignee=assignee)
    return queryset


def grouped(*, assignee=None, everyone: bool = False, zone, now=None) -> TaskGroups:
    """Open tasks: overdue (due before now), due later today, upcoming (later or no date);
    and the latest done ones. "Today" is the business's day."""
    now = now or timezone.now()
    local = timezone.localtime(now, zone)
    end_of_today = datetime.datetime.combine(
        local.date() + datetime.timedelta(days=1), datetime.time.min, tzinfo=zone
    )
    base = tasks_for(assignee=assignee, everyone=everyone)
    open_ = base.filter(completed_at__isnull=True)
    return TaskGroups(
        overdue=list(open_.filter(due_at__lt=now).order_by("due_at", "id")[:200]),
        today=list(open_.filter(due_at__gte=now, due_at__lt=end_of_today).order_by("due_at", "id")),
        upcoming=list(open_.exclude(due_at__lt=end_of_today).order_by("due_at", "id")[:200]),
        done=list(
            base.filter(completed_at__isnull=False).order_by("-completed_at", "-id")[:DONE_SHOWN]
        ),
    )
