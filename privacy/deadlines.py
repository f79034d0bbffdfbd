"""Due dates of data requests (P7): business days on the business's calendar, or calendar days.

Business days skip the business's weekend days (default Saturday and Sunday) and its holidays;
the day the request arrives does not count.
"""

from __future__ import annotations

import datetime
from collections.abc import Collection

from django.utils import timezone

DEFAULT_WEEKEND = frozenset({5, 6})


def add_business_days(
    start: datetime.date,
    days: int,
    *,
    weekend: Collection[int] = DEFAULT_WEEKEND,
    holidays: Collection[datetime.date] = (),
) -> datetime.date:
    """The date `days` working days after `start`."""
    if len(set(weekend)) >= 7:
        raise ValueError("a calendar needs at least one working day a week")
    current = start
    remaining = days
    while remaining > 0:
        current += datetime.timedelta(days=1)
        if current.weekday() in weekend or current in holidays:
            continue
        remaining -= 1
    return current


def due_date(*, tenant, received: datetime.date | None = None) -> datetime.date:
    """When a request received on `received` (today in the business's time zone) is due."""
    from tenants.models import Tenant, parse_holidays, parse_weekend_days

    if received is None:
        received = timezone.localdate(timezone.now(), tenant.zone)
    days = tenant.request_deadline_days
    if tenant.request_deadline_kind == Tenant.DeadlineKind.CALENDAR_DAYS:
        return received + datetime.timedelta(days=days)
    return add_business_days(
        received,
        days,
        weekend=parse_weekend_days(tenant.request_weekend_days),
        holidays=parse_holidays(tenant.request_holidays),
    )


def today_for(tenant) -> datetime.date:
    return timezone.localdate(timezone.now(), tenant.zone)
