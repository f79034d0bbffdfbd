"""The E.164 shortcut of `normalize_phone` gives exactly what the full parse gives."""

from __future__ import annotations

import random

import phonenumbers
import pytest
from phonenumbers.phonenumberutil import COUNTRY_CODE_TO_REGION_CODE

from crm import phones


def full_parse(raw: str) -> str:
    """What normalize_phone answered before the shortcut (the library's parse, E.164)."""
    number = phonenumbers.parse(raw, None)
    if not phonenumbers.is_possible_number(number):
        raise ValueError("impossible")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def outcome(function, raw):
    try:
        return function(raw)
    except (phonenumbers.NumberParseException, ValueError, phones.InvalidPhoneNumber):
        return "error"


def test_the_shortcut_agrees_with_the_full_parse_for_every_country():
    rng = random.Random(2024)
    codes = sorted(COUNTRY_CODE_TO_REGION_CODE)
    samples = [
        "+" + str(rng.choice(codes)) + "".join(rng.choice("0123456789") for _ in range(n))
        for n in (rng.randint(1, 15) for _ in range(20_000))
    ]
    shortcut_taken = 0
    for raw in samples:
        assert outcome(phones.normalize_phone, raw) == outcome(full_parse, raw), raw
        shortcut_taken += phones._already_e164(raw) is not None
    assert shortcut_taken > 2_000  # the comparison covered the shortcut, not only the fallback


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("+14155550123", "+14155550123"),
        ("+4407700900123", "+447700900123"),  # a trunk 0 after the country code is dropped
        ("+390612345678", "+390612345678"),  # Italy keeps its leading zero
        ("+78001234567", "+78001234567"),
        ("whatsapp:+14155550123", "+14155550123"),
    ],
)
def test_known_numbers(raw, expected):
    assert phones.normalize_phone(raw) == expected
