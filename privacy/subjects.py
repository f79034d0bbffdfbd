"""Finding a data subject's rows through the personal-data registry.

A subject is identified by a phone number (E.164) and/or an e-mail address. Their rows are:
- the contacts with that phone or e-mail, and every row whose `subject_path` leads to one;
- rows whose `match_fields` hold one of the identifiers (a request for someone unknown);
- for models declared SCAN_AND_DELETE, rows whose personal fields mention an identifier in
  any form a provider writes it ("+14155550123", "whatsapp:+14155550123", "14155550123",
  URL-encoded), and uploaded files that contain one.
A mention is a whole number or a whole address: "+141555501234" and "jana@example.org" are
someone else, and erasing Ana must not delete their payloads or fail its verification on them.
Export, erasure and verification all read rows from here, so a new model declared in its app's
`personal_data.py` is covered without a change in this package.
"""

from __future__ import annotations

import dataclasses
import functools
import re
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

# What may stand right before an identifier: the start, a character that cannot be part of it,
# or a URL-encoded character ("%2B" of "+", "%3A" of ":", "%20" of a space).
_ENCODED = "%[0-9a-f]{2}"
_BEFORE_NUMBER = f"(^|[^0-9]|{_ENCODED})"
_AFTER_NUMBER = "([^0-9]|$)"
# "+" stays outside the address's own characters: form encoding writes a space as "+".
_BEFORE_ADDRESS = f"(^|[^a-z0-9._-]|{_ENCODED})"
# The domain ends there: not "example.org.uk", but "example.org." at the end of a sentence.
_AFTER_ADDRESS = "($|[^a-z0-9.-]|[.]($|[^a-z0-9-]))"


@dataclasses.dataclass(frozen=True)
class Mention:
    """One identifier as it may be written: `needle` is a plain substring every mention
    contains (cheap to look for first), `pattern` the whole mention with its boundaries.
    Patterns use only what PostgreSQL's and Python's regular expressions share, and are
    matched case-insensitively."""

    needle: str
    pattern: str

    @classmethod
    def number(cls, digits: str) -> Mention:
        # "00" is the international prefix a customer types instead of "+".
        return cls(digits, f"{_BEFORE_NUMBER}(00)?{re.escape(digits)}{_AFTER_NUMBER}")

    @classmethod
    def address(cls, text: str) -> Mention:
        return cls(text, f"{_BEFORE_ADDRESS}{re.escape(text.lower())}{_AFTER_ADDRESS}")

    def condition(self, target: str) -> Q:
        return Q(**{f"{target}__icontains": self.needle, f"{target}__iregex": self.pattern})

    @functools.cached_property
    def compiled(self) -> re.Pattern[bytes]:
        # Compiled once per mention, not once per window of every file scanned.
        return re.compile(self.pattern.encode(), re.IGNORECASE)

    def in_window(self, window: bytes, *, first: bool, last: bool) -> bool:
        """Does this window of a file (already lower-cased) mention the identifier? A window's
        edges are not the file's: a match touching one is left to the window that overlaps
        it with its context on both sides."""
        if self.needle.lower().encode() not in window:
            return False
        for found in self.compiled.finditer(window):
            if (first or found.start() > 0) and (last or found.end() < len(window)):
                return True
        return False


@dataclasses.dataclass(frozen=True)
class Subject:
    """A person, by the identifiers a request gave, and their contacts. `phones` and `emails`
    add the contacts' own identifiers: a request by phone must also find the payloads, files
    and earlier requests that only name the e-mail address of the contact it matched."""

    phone: str = ""
    email: str = ""
    contact_ids: tuple[int, ...] = ()
    also_phones: tuple[str, ...] = ()
    also_emails: tuple[str, ...] = ()

    @property
    def phones(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(p for p in (self.phone, *self.also_phones) if p))

    @property
    def emails(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(e.lower() for e in (self.email, *self.also_emails) if e))

    @property
    def mentions(self) -> tuple[Mention, ...]:
        """The ways the subject's identifiers are written wherever they were copied."""
        found = []
        for phone in self.phones:
            digits = "".join(ch for ch in phone if ch.isdigit())
            # The digits are inside "+1…", "whatsapp:+1…", "whatsapp%3A%2B1…" and Meta's wa_id.
            if len(digits) >= MIN_PHONE_DIGITS:
                found.append(Mention.number(digits))
            else:
                found.append(Mention(phone, re.escape(phone.lower())))
        for email in self.emails:
            found.append(Mention.address(email))
            encoded = quote(email, safe="")
            if encoded != email:
                found.append(Mention.address(encoded))
        return tuple(found)

    @property
    def is_empty(self) -> bool:
        return not (self.phone or self.email)


def find_subject(*, phone: str = "", email: str = "") -> Subject:
    """The subject with these identifiers in the active business, their contacts, and the
    contacts' other identifiers."""
    from crm.models import Contact

    query = Q()
    if phone:
        query |= Q(phone=phone)
    if email:
        query |= Q(email__iexact=email)
    if not query:
        return Subject(phone=phone, email=email)
    found = list(Contact.objects.filter(query).order_by("pk").values_list("pk", "phone", "email"))
    return Subject(
        phone=phone,
        email=email,
        contact_ids=tuple(pk for pk, _phone, _email in found),
        also_phones=tuple(p for _pk, p, _email in found if p and p != phone),
        also_emails=tuple(e for _pk, _phone, e in found if e and e.lower() != email.lower()),
    )


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


def _text_match(model, names: Iterable[str], mentions: Iterable[Mention]) -> tuple[dict, Q]:
    """Annotations and a condition: any of the fields mentions any of the identifiers."""
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
        for mention in mentions:
            condition |= mention.condition(target)
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
        for phone in subject.phones:
            condition |= Q(**{name: phone})
        for email in subject.emails:
            condition |= Q(**{f"{name}__iexact": email})
    if entry.erasure is Erasure.SCAN_AND_DELETE and subject.mentions:
        annotations, scanned = _text_match(model, entry.fields, subject.mentions)
        condition |= scanned
    if not condition:
        return model.objects.none()
    queryset = model.objects.all()
    if annotations:
        queryset = queryset.annotate(**annotations)
    return queryset.filter(condition)


def rows_mentioning(
    entry: PersonalData, subject: Subject, *, fields: Iterable[str] | None = None
) -> models.QuerySet:
    """Rows of a model kept on erasure (ANONYMISE, KEEP_PROOF) whose personal text fields (or
    `fields` of them) mention the subject, whoever the rows belong to."""
    model = entry.model
    if entry.erasure not in (Erasure.ANONYMISE, Erasure.KEEP_PROOF) or not subject.mentions:
        return model.objects.none()
    annotations, condition = _text_match(model, fields or entry.fields, subject.mentions)
    if not condition:
        return model.objects.none()
    return model.objects.annotate(**annotations).filter(condition)


def file_mentions(fieldfile, mentions: Iterable[Mention]) -> bool:
    """Does the stored file mention one of the identifiers (case-insensitive)? Read in chunks.
    A zip archive (an export) is read member by member, uncompressed: its compressed bytes
    would hide what it holds."""
    if not fieldfile:
        return False
    mentions = tuple(mentions)
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
                            if _stream_mentions(stream, mentions):
                                return True
                return False
            except zipfile.BadZipFile:
                pass  # only looks like one: read as it is
        handle.seek(0)
        return _stream_mentions(handle, mentions)


def _stream_mentions(stream, mentions: tuple[Mention, ...]) -> bool:
    # Each window repeats the end of the one before, longer than any mention with its
    # boundaries, so a mention cut by a window's edge is whole in the next one.
    overlap = max((len(m.needle) for m in mentions), default=0) + 16
    tail = b""
    first = True
    chunk = stream.read(FILE_SCAN_CHUNK)
    while chunk:
        following = stream.read(FILE_SCAN_CHUNK)
        window = tail + chunk.lower()
        last = not following
        if any(m.in_window(window, first=first, last=last) for m in mentions):
            return True
        tail = window[-overlap:]
        first = False
        chunk = following
    return False


def rows_with_files(entry: PersonalData, subject: Subject) -> list[int]:
    """Ids of rows whose uploaded files (declared file fields) mention the subject."""
    names = file_fields(entry)
    if not names or not subject.mentions or entry.erasure is not Erasure.SCAN_AND_DELETE:
        return []
    found = []
    for obj in entry.model.objects.only("pk", *names).iterator(chunk_size=200):
        if any(file_mentions(getattr(obj, name), subject.mentions) for name in names):
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
        if entry.erasure in (Erasure.ANONYMISE, Erasure.KEEP_PROOF):
            mentioning = rows_mentioning(entry, subject).values("pk")
            queryset = entry.model.objects.filter(
                Q(pk__in=queryset.values("pk")) | Q(pk__in=mentioning)
            )
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
    mentions = subject.mentions
    if not mentions:
        return hits
    for entry in REGISTRY.values():
        skip = set(exclude.get(entry.label, ()))
        names = tuple(dict.fromkeys((*entry.fields, *entry.match_fields)))
        annotations, condition = _text_match(entry.model, names, mentions)
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
                if obj.pk not in found and file_mentions(getattr(obj, name), mentions):
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
