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
from django.db import models
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
    return value


def _converter(field):
    """How a column's database value becomes a JSON value (most columns: as it is)."""
    if isinstance(field, (models.DateTimeField, models.DateField, models.TimeField)):
        return lambda value: value.isoformat() if value is not None else None
    if isinstance(field, (models.DecimalField, models.UUIDField)):
        return lambda value: str(value) if value is not None else None
    if isinstance(field, (models.CharField, models.TextField, models.IntegerField,
                          models.BooleanField, models.AutoField, models.ForeignKey,
                          models.JSONField, models.FileField, models.FloatField)):  # fmt: skip
        return None
    return _plain


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
    """Write the archive into the binary file `handle`; returns {label: rows}.

    One pass over each model's rows writes its part of data.json straight into the archive
    and its CSV into a temporary file, added to the archive once data.json is complete."""
    counts: dict[str, int] = {}
    samples: dict[str, dict] = {}
    csv_files: dict[str, tempfile._TemporaryFileWrapper] = {}
    entries = list(reversed(subjects.customer_entries()))  # the contact first
    dumps = json.JSONEncoder(ensure_ascii=False, default=str).encode
    try:
        with zipfile.ZipFile(handle, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            with archive.open("data.json", "w", force_zip64=True) as raw:
                out = io.TextIOWrapper(raw, encoding="utf-8")
                header = {
                    "business": tenant.name,
                    "generated_at": timezone.now().isoformat(),
                    "request": data_request.pk if data_request is not None else None,
                    "subject": {"phone": subject.phone, "email": subject.email},
                }
                out.write(dumps(header)[:-1])
                out.write(', "tables": {')
                first_table = True
                for entry in entries:
                    columns = subjects.export_columns(entry.model)
                    names = [field.attname for field in columns]
                    converters = [(i, c) for i, f in enumerate(columns) if (c := _converter(f))]
                    count = 0
                    writer = None
                    for values in subjects.iter_values(subjects.all_rows(entry, subject), columns):
                        values = list(values)
                        for index, convert in converters:
                            values[index] = convert(values[index])
                        if count == 0:
                            out.write("" if first_table else ", ")
                            out.write(dumps(entry.label) + ": [")
                            first_table = False
                            csv_file = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed below
                                "w+", encoding="utf-8", newline="", suffix=".csv"
                            )
                            csv_files[entry.label] = csv_file
                            writer = csv.writer(csv_file)
                            writer.writerow(names)
                        else:
                            out.write(", ")
                        out.write(dumps(dict(zip(names, values, strict=True))))
                        cells = [_csv_cell(value) for value in values]
                        writer.writerow(cells)
                        if count < SUMMARY_ROWS:
                            samples.setdefault(entry.label, {"columns": names, "rows": []})
                            samples[entry.label]["rows"].append(cells)
                        count += 1
                    if count:
                        out.write("]")
                        counts[entry.label] = count
                out.write("}}")
                out.flush()
                out.detach()
            for label, csv_file in csv_files.items():
                csv_file.flush()
                archive.write(csv_file.name, f"{label}.csv")
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
    finally:
        for csv_file in csv_files.values():
            csv_file.close()
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
