"""Sub-processors (P16): who else handles the business's customers' data, generated from what
the business has switched on — its active channels and its AI provider — plus the platform's
own hosting as configured (`PLATFORM_SUBPROCESSORS`). The list can be published as it stands
(the privacy centre offers it as a text download)."""

from __future__ import annotations

import dataclasses
from urllib.parse import urlsplit

from django.conf import settings
from django.utils.translation import gettext as _

from channels_app.models import BotProfile, Channel


@dataclasses.dataclass(frozen=True)
class SubProcessor:
    name: str
    purpose: str
    location: str = ""
    # What made it appear (a channel's name, "AI replies", "platform").
    because: str = ""


TWILIO = "Twilio Inc."
META = "Meta Platforms Ireland Ltd. (WhatsApp Business Platform)"
OPENAI_HOST = "api.openai.com"


def platform_subprocessors() -> list[SubProcessor]:
    found = []
    for item in settings.PLATFORM_SUBPROCESSORS.split(";"):
        parts = [part.strip() for part in item.split("|")]
        if not parts or not parts[0]:
            continue
        name, purpose, location = [*parts, "", ""][:3]
        found.append(SubProcessor(name, purpose, location, _("platform")))
    return found


def _ai_host(profile: BotProfile | None) -> str | None:
    """The AI provider's host the bot would call, or None when it answers locally (no key).
    Reads the bot's own provider choice, so the list cannot disagree with what it calls."""
    from channels_app.bot.providers import config_for

    config = config_for(profile)
    if config.is_local:
        return None
    return urlsplit(config.base_url).hostname or OPENAI_HOST


def subprocessors() -> list[SubProcessor]:
    """The active business's sub-processors, platform first, each named once."""
    found: dict[str, SubProcessor] = {}
    for processor in platform_subprocessors():
        found.setdefault(processor.name, processor)
    for channel in Channel.objects.filter(is_active=True).order_by("name", "pk"):
        if channel.kind in (Channel.Kind.TWILIO_WHATSAPP, Channel.Kind.TWILIO_SMS):
            processor = SubProcessor(
                TWILIO, _("Delivers and receives WhatsApp and SMS messages"), _("USA"), channel.name
            )
        elif channel.kind == Channel.Kind.META_WHATSAPP:
            processor = SubProcessor(
                META, _("Delivers and receives WhatsApp messages"), _("EU / USA"), channel.name
            )
        else:
            continue  # the sandbox stays on the platform
        found.setdefault(processor.name, processor)
    profiles = list(BotProfile.objects.filter(enabled=True))
    for profile in profiles or [None]:
        host = _ai_host(profile)
        if host is None:
            continue
        name = _("OpenAI, L.L.C.") if host == OPENAI_HOST else host
        found.setdefault(
            name,
            SubProcessor(
                name,
                _("Writes the bot's replies from the conversation's recent messages"),
                _("USA") if host == OPENAI_HOST else "",
                _("AI replies"),
            ),
        )
    return list(found.values())


def as_text(*, business_name: str, processors: list[SubProcessor]) -> str:
    lines = [_("Sub-processors of %(name)s") % {"name": business_name}, ""]
    for processor in processors:
        line = f"- {processor.name}: {processor.purpose}"
        if processor.location:
            line += f" ({processor.location})"
        lines.append(line)
    return "\n".join(lines) + "\n"
