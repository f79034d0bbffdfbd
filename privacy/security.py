"""Security events (P17): what a business needs to look back on when judging a breach, and the
incident record with its 72-hour notification clock.

- forged or malformed webhooks: `record_webhook_rejection`, called by the inbound pipeline's
  rejection counter;
- repeated failed logins: `note_failed_login`, called for every failed sign-in; a burst of
  `FAILED_LOGIN_BURST` failures for one address within `FAILED_LOGIN_WINDOW_MINUTES` makes one
  event in every business that address's account belongs to;
- large exports of personal data: `note_export`, called by the export views.

Repeats of one kind from one address within `MERGE_WINDOW` add to the same event's count.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from privacy.models import NOTIFICATION_DEADLINE, Incident, SecurityEvent
from tenants.context import require_current_tenant, tenant_context
from tenants.models import Membership, Tenant

Kind = SecurityEvent.Kind

MERGE_WINDOW = datetime.timedelta(minutes=10)


def record_event(
    *,
    kind: str,
    detail: str = "",
    ip_address: str | None = None,
    user=None,
    channel=None,
    now: datetime.datetime | None = None,
) -> SecurityEvent:
    """Record one event in the active business, or count it on a recent one just like it."""
    now = now or timezone.now()
    with transaction.atomic():
        recent = (
            SecurityEvent.objects.select_for_update()
            .filter(
                kind=kind,
                ip_address=ip_address,
                user=user,
                channel=channel,
                last_seen_at__gte=now - MERGE_WINDOW,
            )
            .order_by("-last_seen_at")
            .first()
        )
        if recent is not None:
            SecurityEvent.objects.filter(pk=recent.pk).update(
                count=F("count") + 1, last_seen_at=now, detail=detail[:300] or recent.detail
            )
            recent.refresh_from_db()
            return recent
        return SecurityEvent.objects.create(
            kind=kind,
            detail=detail[:300],
            ip_address=ip_address,
            user=user,
            channel=channel,
            first_seen_at=now,
            last_seen_at=now,
        )


def record_webhook_rejection(*, channel, forged: bool, reason: str, ip_address=None) -> None:
    """A webhook of `channel` was refused: a bad signature (forged) or an unreadable body."""
    with tenant_context(Tenant.objects.get(pk=channel.tenant_id)):
        record_event(
            kind=Kind.FORGED_WEBHOOK if forged else Kind.MALFORMED_WEBHOOK,
            detail=reason,
            ip_address=ip_address,
            channel=channel,
        )


def _login_key(email: str) -> str:
    digest = hashlib.sha256(email.strip().lower().encode()).hexdigest()[:32]
    return f"privacy:failed-login:{digest}"


def note_failed_login(*, email: str, ip_address: str | None = None) -> list[SecurityEvent]:
    """Count a failed sign-in for `email`; at the burst threshold, one event per business the
    account belongs to. Unknown addresses are counted but belong to no business."""
    if not email:
        return []
    key = _login_key(email)
    window = settings.FAILED_LOGIN_WINDOW_MINUTES * 60
    cache.add(key, 0, timeout=window)
    try:
        failures = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, timeout=window)
        failures = 1
    if failures != settings.FAILED_LOGIN_BURST:
        return []
    memberships = list(
        Membership.objects.select_related("tenant", "user").filter(user__email__iexact=email)
    )
    events = []
    for membership in memberships:
        with tenant_context(membership.tenant):
            events.append(
                record_event(
                    kind=Kind.FAILED_LOGIN_BURST,
                    detail=_("%(count)s failed sign-ins for %(email)s within %(minutes)s minutes")
                    % {
                        "count": failures,
                        "email": membership.user.email,
                        "minutes": settings.FAILED_LOGIN_WINDOW_MINUTES,
                    },
                    ip_address=ip_address,
                    user=membership.user,
                )
            )
    return events


def note_export(*, rows: int, what: str, user=None, ip_address=None) -> SecurityEvent | None:
    """An export of personal data in the active business; a large one is a security event."""
    if rows < settings.MASS_EXPORT_ROWS:
        return None
    return record_event(
        kind=Kind.MASS_EXPORT,
        detail=_("%(what)s: %(rows)s rows") % {"what": what, "rows": rows},
        ip_address=ip_address,
        user=user,
    )


@dataclasses.dataclass(frozen=True)
class EventFilter:
    kind: str = ""
    since: datetime.date | None = None


def events(filters: EventFilter, *, zone):
    queryset = SecurityEvent.objects.select_related("user", "channel")
    if filters.kind:
        queryset = queryset.filter(kind=filters.kind)
    if filters.since:
        start = datetime.datetime.combine(filters.since, datetime.time.min, tzinfo=zone)
        queryset = queryset.filter(last_seen_at__gte=start)
    return queryset.order_by("-last_seen_at", "-id")


# --- Incidents --------------------------------------------------------------------------------


def open_incident(
    *, title: str, description: str = "", detected_at: datetime.datetime, by=None
) -> Incident:
    """Record a suspected breach; the notification is due 72 hours after its detection."""
    title = title.strip()
    if not title:
        raise ValidationError({"title": _("Say in a few words what happened.")})
    if detected_at > timezone.now() + datetime.timedelta(minutes=5):
        raise ValidationError({"detected_at": _("The detection time cannot be in the future.")})
    require_current_tenant()
    return Incident.objects.create(
        title=title,
        description=description,
        detected_at=detected_at,
        notify_by=detected_at + NOTIFICATION_DEADLINE,
        created_by=by,
    )


def record_notification(
    *, incident: Incident, notified_whom: str, notified_at: datetime.datetime, notes: str = ""
) -> Incident:
    """The authority (and the people affected) were told. Recording it again corrects it."""
    notified_whom = notified_whom.strip()
    if not notified_whom:
        raise ValidationError({"notified_whom": _("Say who was notified.")})
    if notified_at < incident.detected_at:
        raise ValidationError({"notified_at": _("The notification cannot precede the detection.")})
    incident.notified_at = notified_at
    incident.notified_whom = notified_whom[:300]
    if notes:
        incident.notes = f"{incident.notes}\n{notes}".strip()
    if incident.status == Incident.Status.OPEN:
        incident.status = Incident.Status.NOTIFIED
    incident.save(update_fields=["notified_at", "notified_whom", "notes", "status"])
    return incident


def close_incident(*, incident: Incident) -> Incident:
    incident.status = Incident.Status.CLOSED
    incident.save(update_fields=["status"])
    return incident


def incidents() -> list[Incident]:
    return list(Incident.objects.order_by("-detected_at", "-id"))


def on_user_login_failed(sender, credentials, request=None, **kwargs) -> None:
    """Receiver of Django's `user_login_failed` (allauth's sign-in form sends it too)."""
    from privacy.access_log import client_ip

    email = credentials.get("email") or credentials.get("username") or ""
    note_failed_login(
        email=str(email), ip_address=client_ip(request) if request is not None else None
    )
