"""Demo data for the privacy centre: an incident already notified, a forged webhook burst and
a dry-run purge report, so the centre's cards show what they are for. Idempotent."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from privacy import retention, security
from privacy.models import Incident, PurgeReport, SecurityEvent

DEMO_INCIDENT = "Price list e-mailed to the wrong customer"


def seed_privacy(*, tenant) -> None:
    """Run with `tenant` active."""
    now = timezone.now()
    if not Incident.objects.filter(title=DEMO_INCIDENT).exists():
        incident = security.open_incident(
            title=DEMO_INCIDENT,
            description="One customer's quote went to another; no phone numbers were in it.",
            detected_at=now - timedelta(days=3),
        )
        security.record_notification(
            incident=incident,
            notified_whom="Information Commissioner's Office; the customer concerned",
            notified_at=now - timedelta(days=2),
        )
    if not SecurityEvent.objects.filter(kind=SecurityEvent.Kind.FORGED_WEBHOOK).exists():
        for _ in range(3):
            security.record_event(
                kind=SecurityEvent.Kind.FORGED_WEBHOOK,
                detail="the signature does not match",
                ip_address="203.0.113.66",
                now=now - timedelta(hours=5),
            )
    if not PurgeReport.objects.exists():
        retention.record_dry_run()
