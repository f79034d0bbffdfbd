"""Demo data of the bot: the demo clinic's bot switched on, a small knowledge base and a token
balance. Idempotent: what exists (and what the owner changed since) is left as it is."""

from __future__ import annotations

from django.utils.translation import gettext as _

from channels_app.bot import knowledge, metering, profiles
from channels_app.bot.models import BotProfile, BotRun, KnowledgeDocument, TokenBalance
from channels_app.models import Message

DEMO_TOKENS = 200_000

DEMO_PROFILE = {
    "enabled": True,
    "instructions": (
        "You are the assistant of a family dental clinic. Help with opening hours, prices, "
        "appointments and directions. Never give medical advice: offer an appointment instead."
    ),
    "tone": "warm, clear and brief",
    "greeting": "Hi! This is the clinic's assistant.",
}

DEMO_DOCUMENTS = {
    "Opening hours": (
        KnowledgeDocument.Kind.MARKDOWN,
        "# Opening hours\n\nWe are open Monday to Friday from 8:00 to 19:00 and on Saturdays "
        "from 9:00 to 13:00. We are closed on Sundays and public holidays.\n\n"
        "# Holidays\n\nBetween Christmas and New Year the clinic opens only in the mornings.",
    ),
    "Prices": (
        KnowledgeDocument.Kind.MARKDOWN,
        "# Prices\n\nA check-up with X-rays costs 65 euros. A professional cleaning "
        "(hygiene appointment) costs 80 euros. A filling costs from 90 euros. Teeth "
        "whitening costs 290 euros for the in-clinic treatment and 180 euros for the home "
        "kit. A crown costs from 650 euros. The first consultation for braces is free.",
    ),
    "Appointments and cancellations": (
        KnowledgeDocument.Kind.TEXT,
        "You can book an appointment by replying here, by phone or at the front desk. "
        "Cleanings take 45 minutes, check-ups 30 minutes. Please cancel or move an "
        "appointment at least 24 hours before it; late cancellations cost 25 euros. We send "
        "a reminder the day before every appointment.",
    ),
    "Finding the clinic": (
        KnowledgeDocument.Kind.WEB_PAGE,
        "The clinic is at 24 Baker Street, first floor, with a lift. The nearest underground "
        "station is Baker Street, a two-minute walk. There is paid parking in the Dorset "
        "Square car park; we have no parking of our own.",
    ),
    "Insurance and payment": (
        KnowledgeDocument.Kind.TEXT,
        "We accept cards, cash and bank transfer. Treatments above 600 euros can be paid in "
        "up to six monthly instalments. We work with most private dental insurance plans; "
        "bring your insurance card and we claim directly.",
    ),
    "Dental emergencies": (
        KnowledgeDocument.Kind.TEXT,
        "For toothache, a broken tooth or a lost filling we keep emergency slots every "
        "morning: write to us or call as early as you can. Outside opening hours, for severe "
        "pain, swelling or bleeding that does not stop, call the emergency dental service.",
    ),
    "Children": (
        KnowledgeDocument.Kind.TEXT,
        "We see children from their first tooth. Check-ups for children under 12 are free "
        "when a parent has a check-up the same day. Our paediatric dentist works on Tuesdays "
        "and Thursdays.",
    ),
}


def seed_bot(*, tenant) -> BotProfile:
    """Call with `tenant` active."""
    profile = profiles.default_profile()
    if profile is None:
        _skip_earlier_messages()
        profile = BotProfile.objects.create(channel=None, **DEMO_PROFILE)
    existing = set(KnowledgeDocument.objects.values_list("title", flat=True))
    for title, (kind, content) in DEMO_DOCUMENTS.items():
        if title not in existing:
            knowledge.add_document(title=title, content=content, kind=kind)
    if not TokenBalance.objects.exists():
        TokenBalance.objects.create(tokens_remaining=DEMO_TOKENS)
    metering.balance()
    return profile


def _skip_earlier_messages() -> None:
    """The demo conversations were written before the bot was switched on: the team answers
    them (their follow-up work may still be queued when the bot comes on)."""
    waiting = Message.objects.filter(direction=Message.Direction.INBOUND, bot_run__isnull=True)
    BotRun.objects.bulk_create(
        [
            BotRun(
                tenant_id=message.tenant_id,
                conversation_id=message.conversation_id,
                inbound_message=message,
                outcome=BotRun.Outcome.SKIPPED,
                reason=_("Received before the bot was switched on."),
            )
            for message in waiting.only("id", "tenant_id", "conversation_id")
        ]
    )
