"""Phone numbers are stored in E.164 ("+14155550123"), parsed with `phonenumbers`."""

from __future__ import annotations

import phonenumbers
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _


class InvalidPhoneNumber(ValidationError):
    pass


def normalize_phone(raw: str, *, default_region: str | None = None) -> str:
    """E.164 form of `raw`, or InvalidPhoneNumber saying why.

    Accepts what providers send: "+1 415 555 0123", "whatsapp:+14155550123", a WhatsApp id
    without the plus ("14155550123"), and national numbers when a default region is given.
    """
    text = (raw or "").strip()
    for prefix in ("whatsapp:", "sms:", "tel:"):
        if text.lower().startswith(prefix):
            text = text[len(prefix) :].strip()
    if not text:
        raise InvalidPhoneNumber(_("A phone number is required."), code="empty")
    if len(text) > 40:
        raise InvalidPhoneNumber(_("That is too long to be a phone number."), code="too_long")
    if not text.startswith("+") and default_region is None and text.isdigit():
        text = "+" + text  # WhatsApp ids are E.164 digits without the plus
    try:
        number = phonenumbers.parse(text, default_region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhoneNumber(
            _("“%(raw)s” is not a phone number (%(why)s).") % {"raw": raw, "why": exc._msg},
            code="unparsable",
        ) from exc
    if not phonenumbers.is_possible_number(number):
        raise InvalidPhoneNumber(
            _("“%(raw)s” is not a possible phone number.") % {"raw": raw}, code="impossible"
        )
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def format_phone(e164: str) -> str:
    """A readable international form for display; the input unchanged if it does not parse."""
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return e164
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
