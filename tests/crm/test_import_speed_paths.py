"""The import's fast paths give the same answers as the slow ones: large batches (looked up
as one JSON list on PostgreSQL), e-mail and phone shortcuts, an existing contact met in two
batches, and the columns a new contact gets."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from crm.models import Contact, ContactTag
from crm.phones import InvalidPhoneNumber, normalize_phone
from crm.services import imports
from privacy.models import ConsentEvent
from tenants.context import tenant_context
from tests.crm.import_support import csv_bytes, report_rows, run_file
from tests.factories import ContactFactory

pytestmark = pytest.mark.django_db


def test_a_large_batch_matches_existing_contacts_by_phone_and_email(tenant_a, owner_a):
    with tenant_context(tenant_a):
        by_phone = [
            ContactFactory(tenant=tenant_a, name="", phone=f"+1415555{i:04d}", email="")
            for i in range(60)
        ]
        by_email = [
            ContactFactory(tenant=tenant_a, name="", phone="", email=f"known{i}@example.com")
            for i in range(60)
        ]
    rows = [["name", "phone", "email", "tags"]]
    rows += [[f"Phone {i}", f"+1415555{i:04d}", "", "vip"] for i in range(60)]
    rows += [[f"Mail {i}", "", f"KNOWN{i}@example.com", "vip"] for i in range(60)]
    rows += [[f"New {i}", f"+1415666{i:04d}", f"new{i}@example.com", "vip"] for i in range(60)]
    result = run_file(tenant_a, owner_a, csv_bytes(rows))

    assert (result.created_count, result.updated_count, result.duplicate_count) == (60, 120, 0)
    with tenant_context(tenant_a):
        assert Contact.objects.count() == 180
        by_phone[7].refresh_from_db()
        by_email[9].refresh_from_db()
        assert by_phone[7].name == "Phone 7" and by_email[9].name == "Mail 9"
        assert ContactTag.objects.count() == 180
        new = Contact.objects.get(phone="+14156660003")
        assert (new.email, new.source) == ("new3@example.com", Contact.Source.IMPORT)
        assert new.last_activity_at == new.created_at


def test_an_existing_contact_in_two_batches_is_updated_and_consented_once(tenant_a, owner_a):
    with tenant_context(tenant_a):
        existing = ContactFactory(tenant=tenant_a, name="", phone="+14155550100")
    data = csv_bytes([
        ["name", "phone"],
        ["Ana", "+14155550100"],
        ["Bo", "+14155550101"],
        ["Ana Again", "+14155550100"],  # a later batch
    ])  # fmt: skip
    result = run_file(tenant_a, owner_a, data, batch_size=2, consent="marketing",
                      evidence="Front desk")  # fmt: skip

    assert (result.created_count, result.updated_count, result.duplicate_count) == (1, 1, 1)
    with tenant_context(tenant_a):
        existing.refresh_from_db()
        assert existing.name == "Ana"
        assert ConsentEvent.objects.filter(contact=existing).count() == 4
    (line,) = report_rows(result)
    assert (line["row"], line["outcome"]) == ("4", "merged into an earlier row")


EMAILS = [
    "ana@example.com", "Ana.Maria+tag@Sub.Example.co.uk", "o'brien@example.ie", "a@b.cd",
    "x_y-z@my-host.example", "user@localhost", "user@[127.0.0.1]", "\"quoted\"@example.com",
    "ana@exa_mple.com", "ana@example", "ana@-example.com", "ana@example-.com", "ana..b@example.com",
    ".ana@example.com", "ana.@example.com", "ana@example.c", "ana@example.123", "ana@@example.com",
    "ana@ex ample.com", "josé@example.com", "ana@exámple.com", "ana@example.com\n", "@example.com",
    "ana@", "a" * 65 + "@example.com", "ana@" + "b" * 64 + ".com", "ana@xn--bcher-kva.example",
]  # fmt: skip


@pytest.mark.parametrize("email", EMAILS)
def test_the_email_shortcut_accepts_only_what_the_validator_accepts(email):
    value = email.strip()  # what the import checks
    try:
        validate_email(value)
        valid = True
    except ValidationError:
        valid = False
    if imports._PLAIN_EMAIL.fullmatch(value):
        assert valid, email
    ctx = imports._Context(
        contact_import=None, columns=[(0, "Email", "email")], attributes={}, owners={},
        region=None, started_at=None, report_path="",
    )  # fmt: skip
    errors: list = []
    row = imports._parse_row(ctx, 2, [email], errors)
    assert (row is not None) == valid, email
    if row is not None:
        assert row.email == value.lower()


@pytest.mark.parametrize(
    "raw",
    ["+14155550100", "+1415555010", "+441234567890", "+4412345", "+79123456789", "+7912345678",
     "+861012345678901", "+99912345678", "+2421234567", "+3912345678", "+390612345678"],
)  # fmt: skip
def test_the_phone_length_cache_keeps_the_answer_of_a_full_parse(raw):
    import phonenumbers

    try:
        number = phonenumbers.parse(raw, None)
        expected = (
            phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
            if phonenumbers.is_possible_number(number)
            else None
        )
    except phonenumbers.NumberParseException:
        expected = None
    for _attempt in range(2):  # the second answer comes from the cache
        try:
            got = normalize_phone(raw)
        except InvalidPhoneNumber:
            got = None
        assert got == expected
