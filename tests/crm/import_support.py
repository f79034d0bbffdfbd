"""Helpers of the import tests: files as users upload them, and an import run end to end."""

from __future__ import annotations

import csv
import io

from django.core.files.uploadedfile import SimpleUploadedFile

from crm.services import imports
from tenants.context import tenant_context


def csv_bytes(rows: list[list[str]], *, delimiter=",", encoding="utf-8") -> bytes:
    out = io.StringIO(newline="")
    csv.writer(out, delimiter=delimiter).writerows(rows)
    return out.getvalue().encode(encoding)


def upload(data: bytes, name: str = "contacts.csv") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type="text/csv")


def run_file(
    tenant, user, data: bytes, *, consent="none", evidence="", mapping=None, batch_size=2000,
    overwrite=False, region="",
):  # fmt: skip
    """Upload, map (the guesses unless `mapping`), configure and run an import to the end."""
    with tenant_context(tenant):
        contact_import = imports.create_import(uploaded_file=upload(data), user=user)
        imports.configure_import(
            contact_import=contact_import,
            mapping=mapping or contact_import.mapping,
            consent=consent,
            consent_evidence=evidence,
            overwrite=overwrite,
            default_region=region,
        )
        contact_import.status = contact_import.Status.RUNNING
        contact_import.save(update_fields=["status"])
        imports.run_import(contact_import=contact_import, batch_size=batch_size)
        contact_import.refresh_from_db()
        return contact_import


def report_rows(contact_import) -> list[dict]:
    with contact_import.error_report.open("rb") as handle:
        text = handle.read().decode("utf-8-sig")
    return list(csv.DictReader(io.StringIO(text)))
