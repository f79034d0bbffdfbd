"""Demo data for data requests: one open export request from a customer of the demo business,
made from their message in the inbox (idempotent: seeding twice adds nothing)."""

from __future__ import annotations

from privacy import dsr
from privacy.models import DataRequest

DEMO_PHONE = "+15555550102"


def seed_data_requests(*, tenant) -> DataRequest | None:
    """Call with the demo business active."""
    from channels_app.models import Message

    existing = DataRequest.objects.filter(notes__startswith="Demo:").first()
    if existing is not None:
        return existing
    message = (
        Message.objects.filter(
            conversation__contact__phone=DEMO_PHONE, direction=Message.Direction.INBOUND
        )
        .order_by("created_at")
        .first()
    )
    return dsr.create_request(
        kind=DataRequest.Kind.EXPORT,
        phone=DEMO_PHONE,
        source=DataRequest.Source.MESSAGE if message else DataRequest.Source.DASHBOARD,
        message=message,
        notes="Demo: the customer asked for a copy of everything the clinic holds about them.",
    )
