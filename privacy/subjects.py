"""Finding a data subject's rows through the personal-data registry.

A subject is identified by a phone number (E.164) and/or an e-mail address. Their rows are:
- the contacts with that phone or e-mail, and every row whose `subject_path` leads to one;
- rows whose `match_fields` hold one of the identifiers (a request for someone unknown);
- for models declared SCAN_AND_DELETE, rows whose personal fields mention an identifier in
  any form a provider writes it ("+14155550123", "whatsapp:+14155550123", "14155550123",
  URL-encoded), and uploaded files that contain one.
Export, erasure and verification all read rows from here, so a new model declared in its app's
`personal_data.py` is covered without a change in this package.
"""

from __future__ import annotations

import dataclasses
import zipfile
from collections.abc import Iterable, Iterator
from urllib.parse import quote

from django.contrib.postgres.search import SearchVectorField
from django.db import models
from django.db.models import Q
from django.db.models.functions import Cast

from privacy.registry import REGISTRY, Erasure, PersonalData

# Digits-only phone forms shorter than this would match unrelated numbers.
MIN_PHONE_DIGITS = 7
FILE_SCAN_CHUNK = 64 * 1024


@dataclasses.dataclass(frozen=True)
class Subject:
    phone: str = ""
    email: str = ""
    contact_ids: tuple[int, ...] = ()

    @property
    def search_forms(self) -> tuple[str, ...]:
        """Substrings that reveal the subject wherever their identifiers were written."""
        forms = []
        if self.phone:
            digits = "".join(ch for ch in self.phone if ch.isdigit())
            # The digits are inside "+1…", "whatsapp:+1…", "whatsapp%3A%2B1…" and Meta's wa_id.
            forms.append(digits if len(digits) >= MIN_PHONE_DIGITS else self.phone)
        if self.email:
            forms.append(self.email)
            encoded = quote(self.email, safe="")
            if encoded != self.email:
                forms.append(encoded)
        return tuple(forms)

    @property
    def is_empty(self) -> bool:
        return not (self.phone or self.email)


def find_subject(*, phone: str = "", email: str = "") -> Subject:
    """The subject with these identifiers in the active business, and their contacts."""
    from crm.models import Contact

    query = Q()
    if phone:
        query |= Q(phone=phone)
    if email:
        query |= Q(email__iexact=email)
    ids: tuple[int, ...] = ()
    if query:
        ids = tuple(Contact.objects.filter(query).order_by("pk").values_list("pk", flat=True))
    return Subject(phone=phone, email=email, contact_ids=ids)


def customer_entries() -> list[PersonalData]:
    """Registry entries that can hold a customer's data, deepest first (so children go before
    their parents when erasing), the contact itself last."""
    entries = [e for e in REGISTRY.values() if e.erasure is not Erasure.NOT_CUSTOMER_DATA]

    def depth(entry: PersonalData) -> int:
        if entry.subject_path is None:
            return 99
        return len(entry.subject_path.split("__")) if entry.subject_path else 0

    return sorted(entries, key=lambda e: (-depth(e), e.label))


def file_fields(entry: PersonalData) -> list[str]:
    return [
        name
        for name in entry.fields
        if isinstance(entry.model._meta.get_field(name), models.FileField)
    ]


def _text_match(model, names: Iterable[str], forms: Iterable[str]) -> tuple[dict, Q]:
    """Annotations and a condition: any of the fields contains any of the forms."""
    annotations = {}
    condition = Q()
    for name in names:
        field = model._meta.get_field(name)
        if isinstance(field, (models.FileField, SearchVectorField)):
            continue
        if isinstance(field, (models.CharField, models.TextField)):
            target = name
        else:
            target = f"_text_{name}"
            annotations[target] = Cast(name, models.TextField())
        for form in forms:
            condition |= Q(**{f"{target}__icontains": form})
    return annotations, condition


def rows(entry: PersonalData, subject: Subject) -> models.QuerySet:
    """The active business's rows of `entry.model` that belong to or mention the subject
    (uploaded files are looked into by `rows_with_files`)."""
    model = entry.model
    condition = Q()
    annotations: dict = {}
    if entry.subject_path is not None and subject.contact_ids:
        key = f"{entry.subject_path}__in" if entry.subject_path else "pk__in"
        condition |= Q(**{key: subject.contact_ids})
    for name in entry.match_fields:
        if subject.phone:
            condition |= Q(**{name: subject.phone})
        if subject.email:
            condition |= Q(**{f"{name}__iexact": subject.email})
    if entry.erasure is Erasure.SCAN_AND_DELETE and subject.search_forms:
        annotations, scanned = _text_match(model, entry.fields, subject.search_forms)
        condition |= scanned
    if not condition:
        return model.objects.none()
    queryset = model.objects.all()
    if annotations:
        queryset = queryset.annotate(**annotations)
    return queryset.filter(condition)


def file_mentions(fieldfile, forms: Iterable[str]) -> bool:
    """Does the stored file contain one of the forms (case-insensitive)? Read in chunks. A zip
    archive (an export) is read member by member, uncompressed: its compressed bytes would
    hide what it holds."""
    if not fieldfile:
        return False
    needles = [form.lower().encode() for form in forms]
    try:
        handle = fieldfile.storage.open(fieldfile.name, "rb")
    except (FileNotFoundError, OSError):
        return False
    with handle:
        if zipfile.is_zipfile(handle):
            handle.seek(0)
            try:
                with zipfile.ZipFile(handle) as archive:
                    for member in archive.infolist():
                        with archive.open(member) as stream:
                            if _stream_mentions(stream, needles):
                                return True
                return False
            except zipfile.BadZipFile:
                pass  # only looks like one: read as it is
        handle.seek(0)
        return _stream_mentions(handle, needles)


def _stream_mentions(stream, needles: list[bytes]) -> bool:
    overlap = max((len(n) for n in needles), default=0)
    tail = b""
    while chunk := stream.read(FILE_SCAN_CHUNK):
        window = (tail + chunk).lower()
        if any(needle in window for needle in needles):
            return True
        tail = window[-overlap:] if overlap else b""
    return False


def rows_with_files(entry: PersonalData, subject: Subject) -> list[int]:
    """Ids of rows whose uploaded files (declared file fields) mention the subject."""
    names = file_fields(entry)
    if not names or not subject.search_forms or entry.erasure is not Erasure.SCAN_AND_DELETE:
        return []
    found = []
    for obj in entry.model.objects.only("pk", *names).iterator(chunk_size=200):
        if any(file_mentions(getattr(obj, name), subject.search_forms) for name in names):
            found.append(obj.pk)
    return found


def all_rows(entry: PersonalData, subject: Subject) -> models.QuerySet:
    """`rows` plus the rows found in files."""
    queryset = rows(entry, subject)
    file_ids = rows_with_files(entry, subject)
    if file_ids:
        queryset = entry.model.objects.filter(Q(pk__in=queryset.values("pk")) | Q(pk__in=file_ids))
    return queryset


def findings(subject: Subject, *, exclude: dict[str, Iterable[int]] | None = None) -> dict:
    """How many rows of each model belong to or mention the subject."""
    exclude = exclude or {}
    counts = {}
    for entry in customer_entries():
        queryset = all_rows(entry, subject)
        if entry.label in exclude:
            queryset = queryset.exclude(pk__in=list(exclude[entry.label]))
        count = queryset.count()
        if count:
            counts[entry.label] = count
    return {"models": counts, "total": sum(counts.values()), "contacts": len(subject.contact_ids)}


def search_every_field(subject: Subject, *, exclude: dict[str, Iterable[int]] | None = None):
    """The verification scan: every registered field of every model (whatever its kind) is
    searched for the subject's identifiers, and every row still linked to their contacts is
    counted. Returns {label: rows that still mention or belong to them}."""
    exclude = exclude or {}
    hits: dict[str, int] = {}
    forms = subject.search_forms
    if not forms:
        return hits
    for entry in REGISTRY.values():
        skip = set(exclude.get(entry.label, ()))
        names = tuple(dict.fromkeys((*entry.fields, *entry.match_fields)))
        annotations, condition = _text_match(entry.model, names, forms)
        if subject.contact_ids and entry.subject_path is not None:
            key = f"{entry.subject_path}__in" if entry.subject_path else "pk__in"
            condition |= Q(**{key: subject.contact_ids})
        found: set[int] = set()
        if condition:
            queryset = entry.model.objects.annotate(**annotations).filter(condition)
            found.update(queryset.values_list("pk", flat=True).distinct())
        for name in file_fields(entry):
            # Only rows that name a file: an export whose file is gone is not opened at all.
            with_file = entry.model.objects.exclude(**{name: ""}).exclude(
                **{f"{name}__isnull": True}
            )
            for obj in with_file.only("pk", name).iterator(chunk_size=200):
                if obj.pk not in found and file_mentions(getattr(obj, name), forms):
                    found.add(obj.pk)
        found -= skip
        if found:
            hits[entry.label] = len(found)
    return hits


def export_columns(model) -> list[models.Field]:
    """The columns an export writes: every concrete field but the tenant and search vectors."""
    return [
        field
        for field in model._meta.concrete_fields
        if field.name != "tenant" and not isinstance(field, SearchVectorField)
    ]


def iter_values(queryset, columns, *, chunk_size: int = 2000) -> Iterator[tuple]:
    names = [field.attname for field in columns]
    yield from queryset.order_by("pk").values_list(*names).iterator(chunk_size=chunk_size)
