"""Bot profiles: the business's default and the per-channel overrides, and the rules read
from them (working hours, hand-off phrases). `effective_profile(channel)` is what the
pipeline uses."""

from __future__ import annotations

import re
from datetime import datetime, time

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from channels_app.bot.models import BotProfile

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# The fields an owner edits on the bot page (api_key separately: it is never shown).
EDITABLE_FIELDS = (
    "enabled",
    "instructions",
    "tone",
    "model",
    "temperature",
    "languages",
    "working_hours",
    "handoff_phrases",
    "handoff_message",
    "max_reply_chars",
    "greeting",
    "mask_personal_data",
    "max_failures",
    "api_base_url",
)


def default_profile() -> BotProfile | None:
    return BotProfile.objects.filter(channel__isnull=True).first()


def ensure_default_profile() -> BotProfile:
    """The business's default profile, created (switched off) the first time it is needed."""
    profile = default_profile()
    if profile is None:
        profile, _created = BotProfile.objects.get_or_create(channel=None)
    return profile


def channel_override(channel) -> BotProfile | None:
    return BotProfile.objects.filter(channel=channel).first()


def effective_profile(channel) -> BotProfile | None:
    """The channel's own profile when it has one, else the business's default (or None)."""
    profiles = list(BotProfile.objects.filter(Q(channel=channel) | Q(channel__isnull=True)))
    own = [profile for profile in profiles if profile.channel_id == channel.pk]
    return (own or profiles or [None])[0]


@transaction.atomic
def update_profile(*, profile: BotProfile, api_key: str | None = None, **changes) -> BotProfile:
    """Save the owner's changes (only `EDITABLE_FIELDS`); `api_key=""` clears the key, None
    keeps it."""
    unknown = set(changes) - set(EDITABLE_FIELDS)
    if unknown:
        raise ValueError(f"not editable: {sorted(unknown)}")
    for name, value in changes.items():
        setattr(profile, name, value)
    if api_key is not None:
        profile.api_key = api_key
    profile.full_clean(exclude=["tenant", "channel"])
    profile.save()
    return profile


@transaction.atomic
def create_channel_override(*, channel) -> BotProfile:
    """A channel's own profile, starting as a copy of the business's default."""
    existing = channel_override(channel)
    if existing is not None:
        return existing
    base = ensure_default_profile()
    values = {name: getattr(base, name) for name in EDITABLE_FIELDS}
    return BotProfile.objects.create(channel=channel, api_key=base.api_key, **values)


@transaction.atomic
def delete_channel_override(*, channel) -> None:
    BotProfile.objects.filter(channel=channel).delete()


# --- Working hours --------------------------------------------------------------------------

HOURS_LINE = re.compile(
    r"^(?P<days>[a-z]{3}(?:\s*-\s*[a-z]{3})?(?:\s*,\s*[a-z]{3}(?:\s*-\s*[a-z]{3})?)*)\s+"
    r"(?P<ranges>\d{1,2}:\d{2}\s*-\s*\d{1,2}:\d{2}(?:\s*,\s*\d{1,2}:\d{2}\s*-\s*\d{1,2}:\d{2})*)$"
)


def parse_working_hours(text: str) -> dict:
    """Lines like "mon-fri 09:00-18:00" or "sat 09:00-13:00, 14:00-16:00" into the stored
    form {"mon": [["09:00", "18:00"]], ...}; empty text is "always"."""
    hours: dict[str, list[list[str]]] = {}
    for number, raw in enumerate((text or "").splitlines(), start=1):
        line = raw.strip().lower()
        if not line:
            continue
        match = HOURS_LINE.match(line)
        if not match:
            raise ValidationError(
                _('Line %(number)d: write it like "mon-fri 09:00-18:00".') % {"number": number}
            )
        days = _days(match.group("days"), number)
        ranges = []
        for part in match.group("ranges").split(","):
            start, end = (_hhmm(value.strip(), number) for value in part.split("-"))
            if start >= end:
                raise ValidationError(
                    _("Line %(number)d: a range must end after it starts.") % {"number": number}
                )
            ranges.append([start, end])
        for day in days:
            hours.setdefault(day, []).extend(ranges)
    return hours


def _days(text: str, number: int) -> list[str]:
    days: list[str] = []
    for part in text.split(","):
        ends = [value.strip() for value in part.split("-")]
        if any(end not in DAYS for end in ends):
            raise ValidationError(
                _("Line %(number)d: days are mon, tue, wed, thu, fri, sat, sun.")
                % {"number": number}
            )
        first, last = DAYS.index(ends[0]), DAYS.index(ends[-1])
        days.extend(DAYS[first : last + 1] if first <= last else DAYS[first:] + DAYS[: last + 1])
    return days


def _hhmm(value: str, number: int) -> str:
    hours, minutes = (int(x) for x in value.split(":"))
    if hours > 24 or minutes > 59 or (hours == 24 and minutes):
        raise ValidationError(
            _("Line %(number)d: %(value)s is not a time of day.")
            % {"number": number, "value": value}
        )
    return f"{hours:02d}:{minutes:02d}"


def format_working_hours(hours: dict) -> str:
    return "\n".join(
        f"{day} " + ", ".join(f"{start}-{end}" for start, end in hours[day])
        for day in DAYS
        if hours.get(day)
    )


def within_working_hours(profile: BotProfile, *, zone, now: datetime | None = None) -> bool:
    if not profile.working_hours:
        return True
    local = timezone.localtime(now or timezone.now(), zone)
    ranges = profile.working_hours.get(DAYS[local.weekday()], [])
    moment = local.time()
    return any(_time(start) <= moment < _time(end) for start, end in ranges)


def _time(value: str) -> time:
    hours, minutes = (int(x) for x in value.split(":"))
    return time.max if hours == 24 else time(hours, minutes)


# --- Hand-off phrases -----------------------------------------------------------------------


def asks_for_person(profile: BotProfile, text: str) -> str | None:
    """The hand-off phrase the customer's message contains (as whole words), if any."""
    lowered = " ".join((text or "").lower().split())
    for phrase in (profile.handoff_phrases or "").splitlines():
        phrase = " ".join(phrase.lower().split())
        if phrase and re.search(rf"(?<!\w){re.escape(phrase)}(?!\w)", lowered):
            return phrase
    return None


def languages(profile: BotProfile) -> list[str]:
    return [code.strip() for code in (profile.languages or "").split(",") if code.strip()]
