"""The access log (P12): every view, export and erasure of personal data leaves an entry.

Views call `record_access(request=..., action=..., obj=...)`; jobs without a request (an
erasure run by Celery) pass `actor=` instead. Reads for the owners' page are `entries(...)`.
"""

from __future__ import annotations

import dataclasses
import datetime
import ipaddress

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone

from privacy.models import AccessLogEntry

Action = AccessLogEntry.Action


def client_ip(request) -> str | None:
    """The visitor's address: REMOTE_ADDR, or the address the trusted proxies saw.

    With `TRUSTED_PROXY_COUNT` proxies in front, X-Forwarded-For's N-th entry from the right
    is the one the outermost trusted proxy received; anything left of it the client can forge.
    """
    address = request.META.get("REMOTE_ADDR", "")
    proxies = settings.TRUSTED_PROXY_COUNT
    if proxies:
        forwarded = [
            part.strip()
            for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")
            if part.strip()
        ]
        if len(forwarded) >= proxies:
            address = forwarded[-proxies]
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return None


def record_access(
    *,
    action: str,
    request=None,
    actor=None,
    obj=None,
    subject=None,
    detail: str = "",
) -> AccessLogEntry:
    """Append one entry in the active business. `obj` is the record touched; `subject` the
    contact whose data it is (taken from `obj` when it is a contact or has one)."""
    if request is not None and actor is None:
        actor = request.user if request.user.is_authenticated else None
    if subject is None and obj is not None:
        from crm.models import Contact

        subject = obj if isinstance(obj, Contact) else getattr(obj, "contact", None)
    return AccessLogEntry.objects.create(
        actor=actor,
        actor_label=getattr(actor, "email", "") or "",
        action=action,
        object_type=obj._meta.label if obj is not None else "",
        object_id=str(obj.pk) if obj is not None else "",
        subject=subject,
        detail=detail[:300],
        ip_address=client_ip(request) if request is not None else None,
        user_agent=(request.META.get("HTTP_USER_AGENT", "")[:200] if request is not None else ""),
    )


@dataclasses.dataclass(frozen=True)
class AccessLogFilter:
    actor_id: int | None = None
    action: str = ""
    subject_id: int | None = None
    since: datetime.date | None = None
    until: datetime.date | None = None


def entries(filters: AccessLogFilter, *, zone) -> QuerySet[AccessLogEntry]:
    """The active business's entries matching `filters`, newest first; dates are days in the
    business's time zone `zone`."""
    queryset = AccessLogEntry.objects.select_related("subject")
    if filters.actor_id:
        queryset = queryset.filter(actor_id=filters.actor_id)
    if filters.action:
        queryset = queryset.filter(action=filters.action)
    if filters.subject_id:
        queryset = queryset.filter(subject_id=filters.subject_id)
    if filters.since:
        start = datetime.datetime.combine(filters.since, datetime.time.min, tzinfo=zone)
        queryset = queryset.filter(created_at__gte=start)
    if filters.until:
        end = datetime.datetime.combine(
            filters.until + datetime.timedelta(days=1), datetime.time.min, tzinfo=zone
        )
        queryset = queryset.filter(created_at__lt=end)
    return queryset.order_by("-created_at", "-id")


def local(moment: datetime.datetime, zone) -> str:
    return timezone.localtime(moment, zone).strftime("%Y-%m-%d %H:%M:%S")
