"""Running an import: per-row errors and the report, dedupe, updates, resume, access log."""

from __future__ import annotations

import pytest

from crm.models import Company, Contact, ContactImport, Tag
from crm.services import imports
from privacy.models import AccessLogEntry
from tenants.context import tenant_context
from tests.crm.import_support import csv_bytes, report_rows, run_file, upload
from tests.factories import ContactAttributeFactory, ContactFactory

pytestmark = pytest.mark.django_db


def contacts(tenant):
    with tenant_context(tenant):
        return {c.phone or c.email: c for c in Contact.objects.prefetch_related("tags")}


def test_valid_rows_are_imported_and_bad_ones_reported_without_losing_the_valid(tenant_a, owner_a):
    with tenant_context(tenant_a):
        ContactAttributeFactory(tenant=tenant_a, key="visits", label="Visits", kind="number")
        ContactAttributeFactory(
            tenant=tenant_a, key="plan", label="Plan", kind="choice", choices=["Basic", "Pro"]
        )
    data = csv_bytes([
        ["Name", "Phone", "Email", "Visits", "Plan", "Owner", "Language"],
        ["Ana", "+1 415 555 0100", "ana@example.com", "3", "pro", "owner@alpha.example", "es"],
        ["Bad Phone", "12", "bad@example.com", "", "", "", ""],
        ["Bad Mail", "+14155550102", "not-an-email", "", "", "", ""],
        ["Nobody", "", "", "", "", "", ""],
        ["Odd Values", "+14155550103", "", "lots", "Gold", "stranger@example.com", "klingon"],
        ["=HYPERLINK(\"http://evil\")", "+14155550104", "", "", "", "", ""],
    ])  # fmt: skip
    result = run_file(tenant_a, owner_a, data)

    assert result.status == ContactImport.Status.DONE
    assert (result.created_count, result.updated_count, result.skipped_count) == (3, 0, 3)
    found = contacts(tenant_a)
    ana = found["+14155550100"]
    assert (ana.name, ana.email, ana.language, ana.source) == ("Ana", "ana@example.com", "es",
                                                               Contact.Source.IMPORT)  # fmt: skip
    assert ana.attributes == {"visits": "3", "plan": "Pro"}
    assert ana.owner == owner_a
    odd = found["+14155550103"]
    assert odd.attributes == {} and odd.owner is None and odd.language == ""
    assert "+14155550102" not in found  # a bad e-mail skips the row: it is how we match people

    report = report_rows(result)
    by_row = {}
    for line in report:
        by_row.setdefault(line["row"], []).append(line)
    assert by_row["3"][0]["column"] == "Phone" and by_row["3"][0]["outcome"] == "row skipped"
    assert by_row["4"][0]["column"] == "Email" and by_row["4"][0]["value"] == "not-an-email"
    assert by_row["5"][0]["error"] == "no phone number and no e-mail"
    assert {line["column"] for line in by_row["6"]} == {"Visits", "Plan", "Owner", "Language"}
    assert {line["outcome"] for line in by_row["6"]} == {"value left out"}
    assert result.error_count == len(report) == 7
    # The report is safe to open in a spreadsheet: no cell starts a formula.
    for line in report:
        for value in (line["column"], line["value"]):
            assert not value or value[0] not in "=+-@"


def test_formula_cells_are_escaped():
    assert imports.escape_cell("=1+1") == "'=1+1"
    assert imports.escape_cell("+14155550100") == "'+14155550100"
    assert imports.escape_cell("-2") == "'-2"
    assert imports.escape_cell("@SUM(A1)") == "'@SUM(A1)"
    assert imports.escape_cell("Ana") == "Ana"


def test_dedupe_by_phone_then_email_against_existing_contacts(tenant_a, owner_a):
    with tenant_context(tenant_a):
        by_phone = ContactFactory(tenant=tenant_a, name="", phone="+14155550100", email="")
        by_email = ContactFactory(
            tenant=tenant_a, name="Kept Name", phone="", email="bo@example.com"
        )
        other_person = ContactFactory(
            tenant=tenant_a, phone="+14155550999", email="fam@example.com"
        )
    data = csv_bytes([
        ["name", "phone", "email", "tags"],
        ["Ana", "+14155550100", "ana@example.com", "vip, 2024"],
        ["Bo New Name", "+14155550101", "BO@example.com", "vip"],
        ["Cy", "+14155550102", "fam@example.com", ""],
    ])  # fmt: skip
    result = run_file(tenant_a, owner_a, data)

    assert (result.created_count, result.updated_count) == (1, 2)
    with tenant_context(tenant_a):
        by_phone.refresh_from_db()
        by_email.refresh_from_db()
        assert (by_phone.name, by_phone.email) == ("Ana", "ana@example.com")  # blanks filled
        assert {t.name for t in by_phone.tags.all()} == {"vip", "2024"}
        # Non-blank data is kept without "overwrite"; the blank phone is filled.
        assert (by_email.name, by_email.phone) == ("Kept Name", "+14155550101")
        assert {t.name for t in by_email.tags.all()} == {"vip"}
        # Same e-mail but another phone: another person, a new contact.
        cy = Contact.objects.get(phone="+14155550102")
        assert cy.pk != other_person.pk and cy.email == "fam@example.com"
        assert Tag.objects.count() == 2


def test_overwrite_replaces_existing_values(tenant_a, owner_a):
    with tenant_context(tenant_a):
        existing = ContactFactory(tenant=tenant_a, name="Old", phone="+14155550100")
    run_file(tenant_a, owner_a, csv_bytes([["name", "phone"], ["New", "+14155550100"]]),
             overwrite=True)  # fmt: skip
    with tenant_context(tenant_a):
        existing.refresh_from_db()
    assert existing.name == "New"


def test_duplicates_within_the_file_merge_into_the_first_row_across_batches(tenant_a, owner_a):
    data = csv_bytes([
        ["name", "phone", "email", "company"],
        ["First", "+14155550100", "", "Acme"],
        ["Second", "+14155550100", "first@example.com", ""],  # same batch as the first
        ["Filler", "+14155550101", "", "acme"],
        ["Third", "+1 (415) 555-0100", "", "Other Co"],  # a later batch
        ["Mail Only", "", "first@example.com", ""],  # matched by the e-mail the 2nd row added
    ])  # fmt: skip
    result = run_file(tenant_a, owner_a, data, batch_size=2)

    assert (result.created_count, result.duplicate_count, result.updated_count) == (2, 3, 0)
    with tenant_context(tenant_a):
        first = Contact.objects.get(phone="+14155550100")
        assert first.name == "First"  # the first row wins
        assert first.email == "first@example.com"  # later rows fill blanks
        assert first.company.name == "Acme"
        assert Company.objects.count() == 1  # "acme" is the same company
        assert Contact.objects.count() == 2
    duplicates = [r for r in report_rows(result) if r["outcome"] == "merged into an earlier row"]
    assert [r["row"] for r in duplicates] == ["3", "5", "6"]
    assert duplicates[0]["error"] == "duplicate of row 2"


def test_national_numbers_use_the_chosen_country(tenant_a, owner_a):
    data = csv_bytes([["name", "phone"], ["Ivan", "8 (912) 345-67-89"]])
    result = run_file(tenant_a, owner_a, data, region="RU")
    assert result.created_count == 1
    assert "+79123456789" in contacts(tenant_a)


def test_an_import_writes_one_access_log_entry(tenant_a, owner_a):
    result = run_file(tenant_a, owner_a, csv_bytes([["phone"], ["+14155550100"]]))
    with tenant_context(tenant_a):
        entries = list(AccessLogEntry.objects.filter(action="imported_contacts"))
    assert len(entries) == 1
    assert entries[0].actor == owner_a and entries[0].object_id == str(result.pk)
    assert "1 created" in entries[0].detail


def test_an_interrupted_import_resumes_without_duplicating(tenant_a, owner_a):
    rows = [["name", "phone", "tags"]] + [
        [f"Person {i}", f"+1415555{i:04d}", "a"] for i in range(10)
    ] + [["Bad", "1", ""]]  # fmt: skip
    with tenant_context(tenant_a):
        contact_import = imports.create_import(uploaded_file=upload(csv_bytes(rows)), user=owner_a)
        imports.configure_import(
            contact_import=contact_import, mapping=contact_import.mapping, consent="none"
        )
        ContactImport.objects.filter(pk=contact_import.pk).update(status="running")

        def crash_after_two_batches(done):
            if done >= 6:
                raise imports.ImportInterrupted

        with pytest.raises(imports.ImportInterrupted):
            imports.run_import(
                contact_import=contact_import, batch_size=3, on_batch=crash_after_two_batches
            )
        contact_import.refresh_from_db()
        assert (contact_import.processed_rows, contact_import.created_count) == (6, 6)
        assert contact_import.status == ContactImport.Status.RUNNING

        imports.run_import(contact_import=contact_import, batch_size=3)
        contact_import.refresh_from_db()
        assert contact_import.status == ContactImport.Status.DONE
        assert (contact_import.processed_rows, contact_import.total_rows) == (11, 11)
        assert (contact_import.created_count, contact_import.skipped_count) == (10, 1)
        assert Contact.objects.count() == 10
        # Running it again (a redelivered task) changes nothing.
        imports.run_import(contact_import=contact_import, batch_size=3)
        assert Contact.objects.count() == 10
        assert AccessLogEntry.objects.filter(action="imported_contacts").count() == 1
    assert [r["row"] for r in report_rows(contact_import)] == ["12"]


def test_the_report_keeps_only_committed_batches_after_a_crash(tenant_a, owner_a):
    rows = [["phone"], ["1"], ["+14155550100"], ["2"], ["+14155550101"]]
    with tenant_context(tenant_a):
        contact_import = imports.create_import(uploaded_file=upload(csv_bytes(rows)), user=owner_a)
        imports.configure_import(
            contact_import=contact_import, mapping=contact_import.mapping, consent="none"
        )
        ContactImport.objects.filter(pk=contact_import.pk).update(status="running")

        # Simulate a crash inside the second batch: its report line was written, then the
        # transaction rolled back (processed_rows still 2).
        def crash(done):
            raise imports.ImportInterrupted

        with pytest.raises(imports.ImportInterrupted):
            imports.run_import(contact_import=contact_import, batch_size=2, on_batch=crash)
        contact_import.refresh_from_db()
        path = contact_import.error_report.path
        with open(path, "a", encoding="utf-8") as out:
            out.write("4,phone,2,stale line of a rolled-back batch,row skipped\r\n")
        imports.run_import(contact_import=contact_import, batch_size=2)
        contact_import.refresh_from_db()
    rows_reported = [r["row"] for r in report_rows(contact_import)]
    assert rows_reported == ["2", "4"]
    assert contact_import.error_count == 2


def test_an_unknown_attribute_in_the_mapping_is_a_mapping_error(tenant_a, owner_a):
    with tenant_context(tenant_a):
        contact_import = imports.create_import(
            uploaded_file=upload(csv_bytes([["phone", "x"], ["+14155550100", "1"]])), user=owner_a
        )
        with pytest.raises(imports.MappingError) as caught:
            imports.configure_import(
                contact_import=contact_import,
                mapping={"phone": "phone", "x": "attr:ghost"},
                consent="none",
            )
    assert "no custom attribute “ghost”" in caught.value.message_dict["mapping"][0]


def test_date_attributes_accept_common_forms_and_report_the_rest(tenant_a, owner_a):
    with tenant_context(tenant_a):
        ContactAttributeFactory(tenant=tenant_a, key="birthday", label="Birthday", kind="date")
    data = csv_bytes([
        ["phone", "birthday"],
        ["+14155550100", "1990-03-31"],
        ["+14155550101", "31.03.1990"],
        ["+14155550102", "March 31st"],
    ])  # fmt: skip
    result = run_file(tenant_a, owner_a, data)
    found = contacts(tenant_a)
    assert found["+14155550100"].attributes == {"birthday": "1990-03-31"}
    assert found["+14155550101"].attributes == {"birthday": "1990-03-31"}
    assert found["+14155550102"].attributes == {}
    (line,) = report_rows(result)
    assert (line["row"], line["column"], line["outcome"]) == ("4", "birthday", "value left out")
    assert "not a date" in line["error"]
