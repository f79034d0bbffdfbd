"""Phone numbers are stored in E.164 ("+14155550123"), parsed with `phonenumbers`."""

from __future__ import annotations

import re

import phonenumbers
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from phonenumbers import PhoneMetadata, PhoneNumber
from phonenumbers.phonenumberutil import COUNTRY_CODE_TO_REGION_CODE, region_code_for_country_code


class InvalidPhoneNumber(ValidationError):
    pass


def normalize_phone(raw: str, *, default_region: str | None = None) -> str:
    """E.164 form of `raw`, or InvalidPhoneNumber saying why.

    Accepts what providers send: "+1 415 555 0123", "whatsapp:+14155550123", a WhatsApp id
    without the plus ("14155550123"), and national numbers when a default region is given.
    """
    text = (raw or "").strip()
    fast = _already_e164(text)
    if fast is not None:
        return fast
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


# --- A shortcut for numbers that are already E.164 ------------------------------------------
# Most numbers we see (providers' webhooks, imports of cleaned lists) are "+<digits>" already.
# For them the answer is decided by the country code and the national number's length, which
# is much cheaper to check than a full parse. Whenever `parse` could change the digits (a
# national number that starts with 0 or with the country's national prefix) or the number is
# not possible, the full parse below decides, so the result is always the same as without the
# shortcut (tests/crm/test_phones.py compares both on many numbers of every country).

_E164_DIGITS = re.compile(r"\+[1-9][0-9]{1,16}")
_NATIONAL_PREFIX: dict[int, tuple[object, re.Pattern | None]] = {}


def _metadata(country_code: int):
    known = _NATIONAL_PREFIX.get(country_code)
    if known is None:
        region = region_code_for_country_code(country_code)
        metadata = PhoneMetadata.metadata_for_region_or_calling_code(country_code, region)
        pattern = getattr(metadata, "national_prefix_for_parsing", None)
        known = (metadata, re.compile(pattern) if pattern else None)
        _NATIONAL_PREFIX[country_code] = known
    return known


def _already_e164(text: str) -> str | None:
    """`text` itself when it is a possible E.164 number the full parse would keep as it is."""
    if not _E164_DIGITS.fullmatch(text):
        return None
    digits = text[1:]
    for length in (1, 2, 3):
        country_code = int(digits[:length])
        if country_code not in COUNTRY_CODE_TO_REGION_CODE:
            continue
        national = digits[length:]
        metadata, national_prefix = _metadata(country_code)
        if metadata is None or not national or national[0] == "0":
            return None
        if national_prefix is not None and national_prefix.match(national):
            return None
        return text if _possible_length(country_code, len(national)) else None
    return None


_POSSIBLE: dict[tuple[int, int], bool] = {}


def _possible_length(country_code: int, length: int) -> bool:
    """`is_possible_number` of a national number of `length` digits (not starting with 0).

    Whether a number is possible depends only on its country code and its length (the
    phonenumbers documentation: "it only checks the length"), so the answer is kept per
    (country code, length): a list of a million numbers asks a few dozen questions.
    """
    key = (country_code, length)
    known = _POSSIBLE.get(key)
    if known is None:
        number = PhoneNumber(country_code=country_code, national_number=int("1" * length))
        known = _POSSIBLE[key] = phonenumbers.is_possible_number(number)
    return known
