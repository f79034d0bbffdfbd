"""Uploading a file: what is refused with a clear message, what is recognised, the guesses."""

from __future__ import annotations

import codecs

import pytest

from crm.services import imports
from tenants.context import tenant_context
from tests.crm.import_support import csv_bytes, upload
from tests.factories import ContactAttributeFactory

pytestmark = pytest.mark.django_db


def inspect(data: bytes):
    return imports.inspect_file(upload(data), size=len(data))


def test_utf8_with_bom_is_read_without_the_bom_in_the_first_header():
    data = codecs.BOM_UTF8 + "Name,Phone\nZoë,+447700900123\n".encode()
    info = inspect(data)
    assert info.encoding == "utf-8-sig"
    assert info.headers == ["Name", "Phone"]
    assert info.preview == [["Zoë", "+447700900123"]]


def test_windows_1251_with_cyrillic_names_is_recognised():
    rows = [["Имя", "Телефон"]] + [
        [name, f"+7912345678{i}"]
        for i, name in enumerate(["Иван Петров", "Мария Сидорова", "Алексей Кузнецов",
                                  "Екатерина Смирнова", "Дмитрий Попов"])
    ]  # fmt: skip
    info = inspect(csv_bytes(rows, delimiter=";", encoding="cp1251"))
    assert codecs.lookup(info.encoding).name == "cp1251"
    assert info.delimiter == ";"
    assert info.headers == ["Имя", "Телефон"]
    assert info.preview[0] == ["Иван Петров", "+79123456780"]
    assert imports.guess_mapping(info.headers, []) == {"Имя": "name", "Телефон": "phone"}


@pytest.mark.parametrize("delimiter", [",", ";", "\t"])
def test_the_delimiter_is_detected(delimiter):
    data = csv_bytes([["name", "phone", "email"], ["Ana", "+14155550100", "ana@example.com"]],
                     delimiter=delimiter)  # fmt: skip
    assert inspect(data).delimiter == delimiter


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", "empty"),
        (b"   \n\n", "empty"),
        (b"PK\x03\x04\x14\x00\x06\x00" + b"\x00" * 100, "spreadsheet"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100, "spreadsheet"),
        (bytes(range(256)) * 20, "binary"),
        (b"name,phone\n", "header_only"),
        (b"name,phone\n\n,\n", "header_only"),
    ],
    ids=["empty", "blank", "xlsx", "xls", "binary", "header-only", "header-and-blank-rows"],
)
def test_files_that_are_not_importable_are_refused_with_a_reason(data, code):
    with pytest.raises(imports.ImportFileError) as caught:
        inspect(data)
    assert caught.value.code == code
    assert caught.value.messages[0]


def test_a_file_over_the_size_limit_is_refused(settings):
    settings.CONTACT_IMPORT_MAX_BYTES = 100
    data = csv_bytes([["name", "phone"]] + [["Ana", "+14155550100"]] * 20)
    with pytest.raises(imports.ImportFileError) as caught:
        inspect(data)
    assert caught.value.code == "too_large"


def test_header_guesses_cover_common_names_and_custom_attributes(tenant_a):
    ContactAttributeFactory(tenant=tenant_a, key="city", label="City")
    headers = ["Full Name", "Mobile", "E-mail", "Tags", "Company", "Owner", "Lifecycle Stage",
               "Language", "City", "Notes", "Phone"]  # fmt: skip
    with tenant_context(tenant_a):
        mapping = imports.guess_mapping(headers)
    assert mapping == {
        "Full Name": "name", "Mobile": "phone", "E-mail": "email", "Tags": "tags",
        "Company": "company", "Owner": "owner", "Lifecycle Stage": "lifecycle_stage",
        "Language": "language", "City": "attr:city", "Notes": "",
        "Phone": "",  # the phone is already taken by "Mobile": each field once
    }  # fmt: skip


def test_duplicate_and_empty_headers_get_distinct_names():
    info = inspect(b"phone,phone,\n+14155550100,+14155550101,x\n")
    assert info.headers == ["phone", "phone (2)", "Column 3"]


def test_utf16_unicode_text_from_a_spreadsheet_is_read():
    text = "Name\tPhone\nJosé\t+34600900312\n"
    info = inspect(codecs.BOM_UTF16_LE + text.encode("utf-16-le"))
    assert info.encoding == "utf-16"
    assert info.delimiter == "\t"
    assert info.preview == [["José", "+34600900312"]]
