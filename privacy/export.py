"""The export archive of a subject's data (P6): a zip with `data.json` (the machine-readable
form), one CSV per model and `summary.html` (a readable page), built from the registry.

Rows are read in batches and written to the archive as they come, so a contact with tens of
thousands of messages does not fill the memory. Archives are stored under MEDIA_ROOT in a
per-business folder with an unguessable name and deleted when they expire.
"""

from __future__ import annotations

import csv
import datetime
import decimal
import io
import json
import secrets
import tempfile
import uuid
import zipfile

from django.core.files import File
from django.core.files.storage import default_storage
from django.template.loader import render_to_string
from django.utils import timezone

from privacy import subjects
from privacy.subjects import Subject

SUMMARY_ROWS = 50


def _plain(value):
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, (decimal.Decimal, uuid.UUID)):
        return str(value)
    if isinstance(value, (bytes, memoryview)):
        return None
    if hasattr(value, "name") and hasattr(value, "storage"):
        return value.name or ""
    return value


def _csv_cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        value = json.dumps(value, ensure_ascii=False)
    value = str(value)
    # A cell a spreadsheet will not run as a formula.
    if value and value[0] in "=+-@\t\r":
        return "'" + value
    return value


def write_archive(handle, subject: Subject, *, tenant, data_request=None) -> dict:
    """Write the archive into the binary file `handle`; returns {label: rows}."""
    counts: dict[str, int] = {}
    samples: dict[str, dict] = {}
    entries = [e for e in subjects.customer_entries() if e.label]
    with zipfile.ZipFile(handle, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        with archive.open("data.json", "w", force_zip64=True) as raw:
            out = io.TextIOWrapper(raw, encoding="utf-8")
            header = {
                "business": tenant.name,
                "generated_at": timezone.now().isoformat(),
                "request": data_request.pk if data_request is not None else None,
                "subject": {"phone": subject.phone, "email": subject.email},
            }
            out.write(json.dumps(header, ensure_ascii=False)[:-1])
            out.write(', "tables": {')
            first_table = True
            for entry in reversed(entries):  # the contact first, then what hangs off it
                queryset = subjects.all_rows(entry, subject)
                columns = subjects.export_columns(entry.model)
                names = [field.attname for field in columns]
                count = 0
                for values in subjects.iter_values(queryset, columns):
                    row = {name: _plain(value) for name, value in zip(names, values, strict=True)}
                    if count == 0:
                        out.write("" if first_table else ", ")
                        out.write(json.dumps(entry.label) + ": [")
                        first_table = False
                    else:
                        out.write(", ")
                    out.write(json.dumps(row, ensure_ascii=False, default=str))
                    if count < SUMMARY_ROWS:
                        samples.setdefault(entry.label, {"columns": names, "rows": []})
                        samples[entry.label]["rows"].append(
                            [_csv_cell(row[name]) for name in names]
                        )
                    count += 1
                if count:
                    out.write("]")
                    counts[entry.label] = count
            out.write("}}")
            out.flush()
            out.detach()
        for entry in reversed(entries):
            if entry.label not in counts:
                continue
            columns = subjects.export_columns(entry.model)
            with archive.open(f"{entry.label}.csv", "w", force_zip64=True) as raw:
                out = io.TextIOWrapper(raw, encoding="utf-8", newline="")
                writer = csv.writer(out)
                writer.writerow([field.attname for field in columns])
                for values in subjects.iter_values(subjects.all_rows(entry, subject), columns):
                    writer.writerow([_csv_cell(_plain(value)) for value in values])
                out.flush()
                out.detach()
        summary = render_to_string(
            "privacy/requests/export_summary.html",
            {
                "tenant": tenant,
                "subject": subject,
                "data_request": data_request,
                "generated_at": timezone.now(),
                "counts": counts,
                "samples": samples,
                "sample_limit": SUMMARY_ROWS,
            },
        )
        archive.writestr("summary.html", summary)
    return counts


def build_archive(subject: Subject, *, tenant, data_request=None) -> tuple[str, dict]:
    """Write the archive and store it; returns (storage name, {label: rows})."""
    with tempfile.TemporaryFile() as handle:
        counts = write_archive(handle, subject, tenant=tenant, data_request=data_request)
        handle.seek(0)
        name = f"exports/{tenant.pk}/{secrets.token_urlsafe(24)}.zip"
        stored = default_storage.save(name, File(handle, name=name))
    return stored, counts


def expiry_for(tenant, *, now=None) -> datetime.datetime:
    days = max(1, tenant.export_file_retention_days or 0)
    return (now or timezone.now()) + datetime.timedelta(days=days)
