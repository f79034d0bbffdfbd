"""CSV import of contacts: upload, column mapping, validation, dedupe, consent, error report.

The flow a user sees: `create_import` checks and keeps the uploaded file (encoding and
delimiter detected, headers and first rows kept for the preview), `configure_import` takes the
column mapping and the consent the business attests, `start_import` queues the Celery task,
which calls `run_import`.

`run_import` streams the file (never reads it whole) and works in batches of `BATCH_SIZE`
rows, one transaction each: the batch's phones and e-mails are looked up in one query, new
contacts are bulk-created and existing ones bulk-updated, tags, companies and consent events
are written in bulk, the batch's lines of the error report are appended and the progress
counters move. A rerun after a crash continues after the last committed batch
(`processed_rows`), so nothing is imported twice.

Speed (bench/import.py): a reader thread reads and checks the next batch (CSV, phones, e-mails:
the Python part) while the current one is written (the database part). On PostgreSQL a batch's
lookups are joins against one JSON list, its inserts and updates one statement each over one
JSON document, its tag links one INSERT … ON CONFLICT, and its commit does not wait for the WAL
flush. Most of what remains is PostgreSQL maintaining the contact table's indexes.

Decisions:
- Dedupe: by E.164 phone, then by e-mail (an e-mail match counts only when the contact found
  or the row has no phone: a different phone is a different person sharing an address).
- A row with a bad phone or e-mail, or with neither, is not imported (reported, "row
  skipped"). Any other bad value (unknown owner, language, stage, attribute value) is left out
  and the rest of the row imported (reported, "value left out"). Valid rows are never lost.
- Duplicates within the file: the first row wins; a later row with the same phone (or
  e-mail) is merged into the contact the first one made (it fills what is still blank and adds
  its tags) and is reported as a duplicate.
- Existing contacts: blank fields are filled and tags added; with `overwrite`, the file's
  non-blank values replace theirs. The lifecycle stage counts as blank while it is the default
  ("lead").
- Consent: "transactional" records transactional consent, "marketing" records marketing and
  transactional, each on WhatsApp and SMS, with source "import" and the import as evidence.
  A customer's own opt-out (a withdrawn state) is never overridden by an attestation.
"""

from __future__ import annotations

import codecs
import csv
import datetime
import io
import json
import logging
import os
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.core.validators import validate_email
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from crm.models import (
    Company,
    ConsentAttestation,
    Contact,
    ContactAttribute,
    ContactImport,
    ContactTag,
    LifecycleStage,
    Tag,
)
from crm.phones import InvalidPhoneNumber, normalize_phone

logger = logging.getLogger(__name__)

BATCH_SIZE = 5000
SAMPLE_BYTES = 256 * 1024
PREVIEW_ROWS = 5
DEFAULT_MAX_BYTES = 256 * 1024 * 1024
DELIMITERS = ",;\t|"
REPORT_HEADER = ["row", "column", "value", "error", "outcome"]
OUTCOME_SKIPPED = "row skipped"
OUTCOME_LEFT_OUT = "value left out"
OUTCOME_MERGED = "merged into an earlier row"

# Contact fields a column can fill ("attr:<key>" fills a custom attribute; "" skips it).
FIELDS = {
    "name": gettext_lazy("Name"),
    "phone": gettext_lazy("Phone"),
    "email": gettext_lazy("E-mail"),
    "language": gettext_lazy("Language"),
    "tags": gettext_lazy("Tags (comma-separated)"),
    "owner": gettext_lazy("Owner (team member's e-mail)"),
    "lifecycle_stage": gettext_lazy("Lifecycle stage"),
    "company": gettext_lazy("Company (created when missing)"),
}

# Header names (lower case, single spaces) that a column's target is guessed from.
HEADER_GUESSES = {
    "name": {
        "name", "full name", "fullname", "contact", "contact name", "client", "customer",
        "customer name", "client name", "person", "имя", "фио", "клиент", "имя клиента",
        "контакт", "nombre", "nombre completo", "nome", "nome completo",
    },
    "phone": {
        "phone", "phone number", "phone no", "mobile", "mobile phone", "mobile number", "cell",
        "cell phone", "tel", "tel.", "telephone", "whatsapp", "whatsapp number", "msisdn",
        "number", "телефон", "тел", "тел.", "мобильный", "мобильный телефон", "номер",
        "номер телефона", "teléfono", "telefono", "móvil", "movil", "celular", "telefone",
    },
    "email": {
        "email", "e-mail", "e mail", "mail", "email address", "e-mail address", "почта",
        "эл. почта", "эл.почта", "электронная почта", "емейл", "имейл", "correo",
        "correo electrónico", "correo electronico",
    },
    "language": {"language", "lang", "locale", "язык", "idioma", "língua", "lingua"},
    "tags": {"tags", "tag", "labels", "label", "groups", "теги", "тег", "метки", "etiquetas"},
    "owner": {
        "owner", "assigned to", "assignee", "manager", "account manager", "responsible",
        "sales rep", "ответственный", "менеджер", "responsable", "responsável",
    },
    "lifecycle_stage": {
        "stage", "lifecycle", "lifecycle stage", "lifecyclestage", "status", "стадия", "статус",
        "etapa", "estado",
    },
    "company": {
        "company", "company name", "organisation", "organization", "business", "employer",
        "компания", "организация", "фирма", "empresa", "compañía",
    },
}  # fmt: skip


class ImportFileError(ValidationError):
    """The uploaded file cannot be imported (shown as a form error)."""


class MappingError(ValidationError):
    """The column mapping or the consent choice is incomplete or wrong (a form error)."""


@dataclass
class FileInfo:
    encoding: str
    delimiter: str
    headers: list[str]
    preview: list[list[str]]


def max_bytes() -> int:
    return int(getattr(settings, "CONTACT_IMPORT_MAX_BYTES", DEFAULT_MAX_BYTES))


# --- The file -------------------------------------------------------------------------------


def detect_encoding(sample: bytes, *, complete: bool) -> str:
    """The text encoding of `sample` (the file's first bytes; `complete` if it is all of it)."""
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    try:
        sample.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError as exc:
        # The sample may end inside a character that the rest of the file completes.
        if not complete and exc.reason == "unexpected end of data":
            return "utf-8"
    import charset_normalizer

    best = charset_normalizer.from_bytes(sample).best()
    if best is None:
        raise ImportFileError(
            _("This file is not text. Save it as CSV (comma-separated values) and try again."),
            code="not_text",
        )
    return codecs.lookup(best.encoding).name


def detect_delimiter(text: str) -> str:
    lines = [line for line in text.splitlines()[:50] if line.strip()]
    try:
        return csv.Sniffer().sniff("\n".join(lines[:20]), delimiters=DELIMITERS).delimiter
    except csv.Error:
        header = lines[0] if lines else ""
        counts = {d: header.count(d) for d in DELIMITERS}
        best = max(counts, key=counts.get)
        return best if counts[best] else ","


def _unique_headers(raw: list[str]) -> list[str]:
    headers, seen = [], {}
    for index, value in enumerate(raw):
        name = value.strip() or _("Column %(n)d") % {"n": index + 1}
        if name in seen:
            seen[name] += 1
            name = f"{name} ({seen[name]})"
        else:
            seen[name] = 1
        headers.append(name)
    return headers


def inspect_file(fileobj, *, size: int | None = None) -> FileInfo:
    """Check that `fileobj` (binary) is a CSV with a header and rows; detect its format."""
    limit = max_bytes()
    if size is not None and size > limit:
        raise ImportFileError(
            _("The file is %(size)s MB; files up to %(limit)s MB can be imported.")
            % {"size": round(size / 1_048_576, 1), "limit": round(limit / 1_048_576)},
            code="too_large",
        )
    fileobj.seek(0)
    sample = fileobj.read(SAMPLE_BYTES + 1)
    complete = len(sample) <= SAMPLE_BYTES
    sample = sample[:SAMPLE_BYTES]
    fileobj.seek(0)
    if not sample.strip():
        raise ImportFileError(_("The file is empty."), code="empty")
    if sample.startswith(b"PK\x03\x04") or sample.startswith(b"\xd0\xcf\x11\xe0"):
        raise ImportFileError(
            _(
                "This is a spreadsheet (Excel) or archive, not CSV. In your spreadsheet, "
                "choose File › Save as › CSV, then upload that file."
            ),
            code="spreadsheet",
        )
    utf16 = sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))
    if b"\x00" in sample and not utf16:
        raise ImportFileError(
            _("This file is not text. Save it as CSV (comma-separated values) and try again."),
            code="binary",
        )
    encoding = detect_encoding(sample, complete=complete)
    text = sample.decode(encoding, errors="replace")
    if not complete and "\n" in text:
        text = text[: text.rfind("\n") + 1]  # the last line may be cut short
    controls = sum(1 for ch in text if ord(ch) < 32 and ch not in "\r\n\t")
    if controls > max(3, len(text) // 100):
        raise ImportFileError(
            _("This file is not text. Save it as CSV (comma-separated values) and try again."),
            code="binary",
        )
    delimiter = detect_delimiter(text)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        raw_headers = next(reader)
        rows = []
        for row in reader:
            if any(cell.strip() for cell in row):
                rows.append(row)
            if len(rows) >= PREVIEW_ROWS:
                break
    except (StopIteration, csv.Error) as exc:
        raise ImportFileError(
            _("This file could not be read as CSV (%(why)s).") % {"why": exc}, code="not_csv"
        ) from exc
    if not any(cell.strip() for cell in raw_headers):
        raise ImportFileError(
            _("The first line must name the columns (Name, Phone, E-mail …); it is empty."),
            code="no_header",
        )
    if not rows:
        raise ImportFileError(
            _("The file has only a header line and no contacts to import."), code="header_only"
        )
    headers = _unique_headers(raw_headers)
    return FileInfo(
        encoding=encoding,
        delimiter=delimiter,
        headers=headers,
        preview=[(row + [""] * len(headers))[: len(headers)] for row in rows],
    )


@transaction.atomic
def create_import(*, uploaded_file, user) -> ContactImport:
    """Check an uploaded file and keep it as a new import (status "uploaded")."""
    info = inspect_file(uploaded_file, size=getattr(uploaded_file, "size", None))
    name = os.path.basename(getattr(uploaded_file, "name", "") or "contacts.csv")[:255]
    contact_import = ContactImport(
        original_name=name,
        encoding=info.encoding,
        delimiter=info.delimiter,
        headers=info.headers,
        mapping=guess_mapping(info.headers),
        created_by=user,
    )
    uploaded_file.seek(0)
    contact_import.file.save("contacts.csv", uploaded_file, save=False)
    contact_import.save()
    return contact_import


def preview(contact_import: ContactImport, *, limit: int = PREVIEW_ROWS) -> list[list[str]]:
    """The first rows of the file, as many cells as headers."""
    width = len(contact_import.headers)
    rows = []
    with _reader(contact_import) as reader:
        next(reader, None)
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue
            rows.append((row + [""] * width)[:width])
            if len(rows) >= limit:
                break
    return rows


class _reader:
    """`with _reader(contact_import) as rows:` a csv reader over the stored file, streamed."""

    def __init__(self, contact_import: ContactImport):
        self.contact_import = contact_import

    def __enter__(self):
        self.raw = self.contact_import.file.open("rb")
        self.text = io.TextIOWrapper(
            self.raw, encoding=self.contact_import.encoding or "utf-8", errors="replace",
            newline="",
        )  # fmt: skip
        return csv.reader(self.text, delimiter=self.contact_import.delimiter or ",")

    def __exit__(self, *exc):
        self.text.detach()
        self.raw.close()


# --- The mapping ----------------------------------------------------------------------------


def _normal_header(header: str) -> str:
    return re.sub(r"[\s_]+", " ", header.strip().lower()).strip(" *:")


def field_choices(attributes=None) -> list[tuple[str, str]]:
    """(target, label) for the mapping form: skip, the contact fields, the custom attributes."""
    attributes = list(ContactAttribute.objects.all()) if attributes is None else attributes
    choices = [("", _("— skip this column —"))]
    choices += [(key, str(label)) for key, label in FIELDS.items()]
    choices += [(f"attr:{a.key}", _("Custom: %(label)s") % {"label": a.label}) for a in attributes]
    return choices


def guess_mapping(headers: list[str], attributes=None) -> dict[str, str]:
    """A good first mapping from the header names; each target is guessed at most once."""
    attributes = list(ContactAttribute.objects.all()) if attributes is None else attributes
    by_name: dict[str, str] = {}
    for target, names in HEADER_GUESSES.items():
        for name in names:
            by_name[name] = target
    for attribute in attributes:
        by_name.setdefault(_normal_header(attribute.key), f"attr:{attribute.key}")
        by_name.setdefault(_normal_header(attribute.label), f"attr:{attribute.key}")
    mapping, used = {}, set()
    for header in headers:
        normal = _normal_header(header)
        target = by_name.get(normal) or by_name.get(normal.removeprefix("attr:"), "")
        if not target and normal.startswith(("first name", "given name", "имя")):
            target = "name"
        if target in used:
            target = ""
        mapping[header] = target
        if target:
            used.add(target)
    return mapping


@transaction.atomic
def configure_import(
    *,
    contact_import: ContactImport,
    mapping: dict[str, str],
    consent: str,
    consent_evidence: str = "",
    overwrite: bool = False,
    default_region: str = "",
) -> ContactImport:
    """Check and keep the mapping and the consent attestation (status "mapped")."""
    if contact_import.status not in (ContactImport.Status.UPLOADED, ContactImport.Status.MAPPED):
        raise MappingError(_("This import has already started."), code="started")
    errors: dict[str, list[str]] = {}
    attributes = {a.key for a in ContactAttribute.objects.all()}
    clean: dict[str, str] = {}
    seen: dict[str, str] = {}
    for header in contact_import.headers:
        target = (mapping.get(header) or "").strip()
        if target.startswith("attr:"):
            if target[5:] not in attributes:
                errors.setdefault("mapping", []).append(
                    _("Column “%(header)s”: there is no custom attribute “%(key)s”.")
                    % {"header": header, "key": target[5:]}
                )
                continue
        elif target and target not in FIELDS:
            errors.setdefault("mapping", []).append(
                _("Column “%(header)s”: unknown field “%(target)s”.")
                % {"header": header, "target": target}
            )
            continue
        if target and target in seen:
            errors.setdefault("mapping", []).append(
                _("Columns “%(first)s” and “%(second)s” both fill the same field.")
                % {"first": seen[target], "second": header}
            )
            continue
        if target:
            seen[target] = header
        clean[header] = target
    if "phone" not in seen and "email" not in seen:
        errors.setdefault("mapping", []).append(
            _(
                "Choose the column with the phone number or the e-mail: contacts are "
                "matched by them."
            )
        )
    if consent not in ConsentAttestation.values:
        errors["consent"] = [_("Say what the people in this file agreed to.")]
    elif consent != ConsentAttestation.NONE and not consent_evidence.strip():
        errors["consent_evidence"] = [
            _("Say how they agreed (for example “signed up on our website form, 2024”).")
        ]
    region = (default_region or "").strip().upper()
    if region:
        import phonenumbers

        if region not in phonenumbers.SUPPORTED_REGIONS:
            errors["default_region"] = [_("Use a two-letter country code such as GB or RU.")]
    if errors:
        raise MappingError(errors)
    contact_import.mapping = clean
    contact_import.consent = consent
    contact_import.consent_evidence = consent_evidence.strip()[:2000]
    contact_import.overwrite = overwrite
    contact_import.default_region = region
    contact_import.status = ContactImport.Status.MAPPED
    contact_import.save(
        update_fields=[
            "mapping", "consent", "consent_evidence", "overwrite", "default_region", "status",
        ]
    )  # fmt: skip
    return contact_import


def start_import(*, contact_import: ContactImport) -> ContactImport:
    """Queue the import (a failed one continues where it stopped)."""
    from crm.tasks import run_contact_import

    startable = (ContactImport.Status.MAPPED, ContactImport.Status.FAILED)
    with transaction.atomic():
        updated = ContactImport.objects.filter(pk=contact_import.pk, status__in=startable).update(
            status=ContactImport.Status.RUNNING, failure_reason=""
        )
        if not updated:
            raise MappingError(_("This import cannot be started now."), code="not_startable")
        tenant_id, import_id = contact_import.tenant_id, contact_import.pk
        # Robust: with eager tasks (development) a failing run is logged and marked failed by
        # the task, not turned into an error of the page that started it.
        transaction.on_commit(lambda: run_contact_import.delay(tenant_id, import_id), robust=True)
    contact_import.refresh_from_db()
    return contact_import


# --- Running --------------------------------------------------------------------------------


@dataclass
class _Row:
    number: int
    phone: str = ""
    email: str = ""
    values: dict = field(default_factory=dict)  # contact field -> value
    attributes: dict = field(default_factory=dict)
    tags: list = field(default_factory=list)
    company: str = ""


@dataclass
class _Context:
    contact_import: ContactImport
    columns: list  # (index, header, target)
    attributes: dict  # key -> ContactAttribute
    owners: dict  # lower e-mail -> user id
    region: str | None
    started_at: datetime.datetime
    report_path: str


def escape_cell(value) -> str:
    """A report cell a spreadsheet will not run as a formula."""
    text = "" if value is None else str(value)
    if text and text[0] in "=+-@\t\r":
        return "'" + text
    return text


def _report_name(contact_import: ContactImport) -> str:
    return f"imports/errors/import-{contact_import.tenant_id}-{contact_import.pk}-errors.csv"


def _prepare_report(contact_import: ContactImport) -> str:
    """The report's path, created with its header, or cut back to the committed rows."""
    if not contact_import.error_report:
        contact_import.error_report.name = _report_name(contact_import)
        ContactImport.objects.filter(pk=contact_import.pk).update(
            error_report=contact_import.error_report.name
        )
    path = default_storage.path(contact_import.error_report.name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    last_row = contact_import.processed_rows + 1  # header is row 1
    if not os.path.exists(path) or contact_import.processed_rows == 0:
        with open(path, "w", newline="", encoding="utf-8-sig") as out:
            csv.writer(out).writerow(REPORT_HEADER)
        return path
    # A crash may have left lines of a batch that was rolled back: keep only committed rows.
    trimmed = path + ".tmp"
    with (
        open(path, newline="", encoding="utf-8-sig") as source,
        open(trimmed, "w", newline="", encoding="utf-8-sig") as out,
    ):
        writer = csv.writer(out)
        for index, line in enumerate(csv.reader(source)):
            if index == 0 or (line and line[0].isdigit() and int(line[0]) <= last_row):
                writer.writerow(line)
    os.replace(trimmed, path)
    return path


def _context(contact_import: ContactImport) -> _Context:
    from tenants.models import Membership

    index_of = {header: i for i, header in enumerate(contact_import.headers)}
    columns = [
        (index_of[header], header, target)
        for header, target in contact_import.mapping.items()
        if target and header in index_of
    ]
    members = Membership.objects.filter(tenant_id=contact_import.tenant_id).select_related("user")
    return _Context(
        contact_import=contact_import,
        columns=columns,
        attributes={a.key: a for a in ContactAttribute.objects.all()},
        owners={m.user.email.lower(): m.user_id for m in members},
        region=contact_import.default_region or None,
        started_at=contact_import.started_at,
        report_path="",
    )


LANGUAGE_CODES = {code: code for code, _name in settings.LANGUAGES}
LANGUAGE_NAMES = {
    "english": "en", "spanish": "es", "español": "es", "espanol": "es", "portuguese": "pt",
    "português": "pt", "portugues": "pt", "russian": "ru", "русский": "ru",
}  # fmt: skip
STAGES = {value: value for value in LifecycleStage.values} | {
    str(label).lower(): value for value, label in LifecycleStage.choices
}


def _language(value: str) -> str | None:
    text = value.strip().lower()
    code = text.replace("_", "-").split("-")[0]
    return LANGUAGE_CODES.get(code) or LANGUAGE_NAMES.get(text)


def _attribute_value(attribute: ContactAttribute, value: str) -> str:
    kind = attribute.kind
    if kind == ContactAttribute.Kind.NUMBER:
        text = value.replace(" ", "").replace("\u00a0", "")
        if "," in text and "." not in text:
            text = text.replace(",", ".")
        try:
            number = Decimal(text)
        except InvalidOperation:
            raise ValueError(_("not a number")) from None
        if not number.is_finite():
            raise ValueError(_("not a number"))
        return str(number)
    if kind == ContactAttribute.Kind.DATE:
        for pattern in ("%Y-%m-%d", "%d.%m.%Y", "%d/%m/%Y", "%Y/%m/%d"):
            try:
                return datetime.datetime.strptime(value.strip(), pattern).date().isoformat()
            except ValueError:
                continue
        raise ValueError(_("not a date (use 2024-03-31 or 31.03.2024)"))
    if kind == ContactAttribute.Kind.CHOICE:
        for choice in attribute.choices or []:
            if str(choice).strip().lower() == value.strip().lower():
                return str(choice)
        raise ValueError(
            _("not one of: %(choices)s") % {"choices": ", ".join(map(str, attribute.choices))}
        )
    return value.strip()[:1000]


# The e-mail addresses most files hold: ASCII, a dot-atom before the "@", a host name after
# it. Every address this matches is one `validate_email` accepts (it is a narrower form of the
# validator's own patterns), and checking it is a fraction of the validator's cost; anything
# else (IDN domains, quoted local parts, IP literals, errors) goes to `validate_email`.
_ATOM = r"[-!#$%&'*+/=?^_`{}|~0-9a-z]+"
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_PLAIN_EMAIL = re.compile(
    rf"{_ATOM}(?:\.{_ATOM})*@{_LABEL}(?:\.{_LABEL})*\.[a-z]{{2,63}}", re.IGNORECASE | re.ASCII
)


def _parse_row(ctx: _Context, number: int, cells: list[str], errors: list) -> _Row | None:
    """One CSV record as a row to import, or None (skipped); problems go to `errors`."""
    row = _Row(number=number)
    problems = []
    skip = False
    for index, header, target in ctx.columns:
        value = cells[index].strip() if index < len(cells) else ""
        if not value:
            continue
        if target == "phone":
            try:
                row.phone = normalize_phone(value, default_region=ctx.region)
            except InvalidPhoneNumber as exc:
                problems.append((header, value, exc.messages[0], OUTCOME_SKIPPED))
                skip = True
        elif target == "email":
            try:
                if len(value) > 320 or not _PLAIN_EMAIL.fullmatch(value):
                    validate_email(value)
                row.email = value.lower()[:254]
            except ValidationError:
                problems.append((header, value, _("not a valid e-mail address"), OUTCOME_SKIPPED))
                skip = True
        elif target == "name":
            row.values["name"] = value[:200]
        elif target == "language":
            code = _language(value)
            if code:
                row.values["language"] = code
            else:
                problems.append(
                    (header, value, _("unknown language (use en, es, pt or ru)"), OUTCOME_LEFT_OUT)
                )
        elif target == "tags":
            row.tags = [t.strip()[:50] for t in re.split(r"[,;|]", value) if t.strip()]
        elif target == "owner":
            owner_id = ctx.owners.get(value.lower())
            if owner_id:
                row.values["owner_id"] = owner_id
            else:
                problems.append(
                    (header, value, _("no team member has this e-mail"), OUTCOME_LEFT_OUT)
                )
        elif target == "lifecycle_stage":
            stage = STAGES.get(value.lower())
            if stage:
                row.values["lifecycle_stage"] = stage
            else:
                problems.append((header, value, _("unknown lifecycle stage"), OUTCOME_LEFT_OUT))
        elif target == "company":
            row.company = value[:200]
        elif target.startswith("attr:"):
            attribute = ctx.attributes.get(target[5:])
            if attribute is None:
                problems.append((header, value, _("unknown custom attribute"), OUTCOME_LEFT_OUT))
                continue
            try:
                row.attributes[attribute.key] = _attribute_value(attribute, value)
            except ValueError as exc:
                problems.append((header, value, str(exc), OUTCOME_LEFT_OUT))
    if not skip and not row.phone and not row.email:
        problems.append(("", "", _("no phone number and no e-mail"), OUTCOME_SKIPPED))
        skip = True
    for header, value, message, outcome in problems:
        errors.append((number, header, value, message, OUTCOME_SKIPPED if skip else outcome))
    return None if skip else row


class _NewContact:
    """A contact a batch is about to create: the fields an import writes, and nothing of a
    model instance's machinery (creating 2,000 of those per batch was a visible cost)."""

    __slots__ = (
        "attributes",
        "company_id",
        "created_at",
        "email",
        "language",
        "lifecycle_stage",
        "name",
        "owner_id",
        "phone",
        "pk",
        "source",
        "updated_at",
    )  # fmt: skip

    def __init__(self):
        self.pk = None
        self.name = self.phone = self.email = self.language = ""
        self.owner_id = self.company_id = None
        self.lifecycle_stage = LifecycleStage.LEAD
        self.attributes = {}
        self.source = Contact.Source.IMPORT
        self.created_at = self.updated_at = None


@dataclass
class _BatchResult:
    created: int = 0
    updated: int = 0
    duplicates: int = 0
    skipped: int = 0
    error_lines: int = 0
    consented: list = field(default_factory=list)


def _apply(contact: Contact, row: _Row, *, overwrite: bool) -> bool:
    """Put the row's values on `contact`; whether anything changed."""
    changed = False
    values = dict(row.values)
    if row.phone:
        values["phone"] = row.phone
    if row.email:
        values["email"] = row.email
    for name, value in values.items():
        current = getattr(contact, name)
        blank = current in ("", None) or (
            name == "lifecycle_stage" and current == LifecycleStage.LEAD
        )
        if name == "phone" and current and current != value:
            continue  # a contact's phone is its identity: never replaced by an e-mail match
        if current != value and (blank or overwrite):
            setattr(contact, name, value)
            changed = True
    for key, value in row.attributes.items():
        current = (contact.attributes or {}).get(key)
        if current != value and (current in (None, "") or overwrite):
            contact.attributes = {**(contact.attributes or {}), key: value}
            changed = True
    return changed


def _matching(tenant, column: str, values: set[str]):
    """The contacts whose `column` ("phone" or "email") is one of `values`.

    On PostgreSQL the values are one JSON parameter joined to the table: a list of 2,000 as
    `IN (%s, …)` costs more to send and parse than the lookup itself, and `= ANY(array)` is
    compared row by row whenever stale statistics make the planner scan the table (1.7 s a
    batch at 20,000 contacts); a join stays a hash join or index probes, both fast.
    """
    blank = Q(phone="") if column == "phone" else Q()
    if connection.vendor != "postgresql" or len(values) < 50:
        return Contact.objects.filter(**{f"{column}__in": values}).exclude(blank)
    table = Contact._meta.db_table
    sql = (
        f'SELECT c.* FROM "{table}" AS c JOIN json_array_elements_text(%s::json) AS x(v) '  # noqa: S608
        f"ON c.{column} = x.v WHERE c.tenant_id = %s AND c.{column} <> ''"
    )
    return Contact.objects.raw(sql, [json.dumps(sorted(values)), tenant.pk])


@dataclass
class _Parsed:
    """A batch of records, read and checked: the rows to import and the problems found."""

    records: int
    rows: list
    errors: list


def _parse_batch(ctx: _Context, records: list[tuple[int, list[str]]]) -> _Parsed:
    errors: list = []
    rows = [r for r in (_parse_row(ctx, n, cells, errors) for n, cells in records) if r]
    return _Parsed(records=len(records), rows=rows, errors=errors)


def _parsed_batches(ctx: _Context, *, skip: int, size: int):
    """`_Parsed` batches after the first `skip` records, read and checked one batch ahead in
    a thread: the CSV and the phone/e-mail checks (Python) run while the previous batch's
    queries (the database) do. At most two batches wait, so memory stays flat."""
    import queue
    import threading

    from django.utils import translation

    ready: queue.Queue = queue.Queue(maxsize=1)
    stop = threading.Event()
    language = translation.get_language()
    end = object()

    def hand_over(item) -> bool:
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def read() -> None:
        try:
            with translation.override(language):
                for records in _batches(ctx.contact_import, skip=skip, size=size):
                    if not hand_over(_parse_batch(ctx, records)):
                        return
            hand_over(end)
        except BaseException as exc:  # handed to the consumer, raised there
            hand_over(exc)

    reader = threading.Thread(target=read, name="contact-import-reader", daemon=True)
    reader.start()
    try:
        while True:
            item = ready.get()
            if item is end:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        reader.join(timeout=5)


def _process_batch(ctx: _Context, parsed: _Parsed) -> _BatchResult:
    contact_import = ctx.contact_import
    tenant = contact_import.tenant
    errors: list = list(parsed.errors)  # a copy: a retried batch starts from the same problems
    rows = parsed.rows
    result = _BatchResult(skipped=parsed.records - len(rows))

    phones = {r.phone for r in rows if r.phone}
    emails = {r.email for r in rows if r.email}
    # Two queries, not one with OR: each uses its index (the phone one is partial, so the
    # query says phone <> ''); an OR of two long lists makes PostgreSQL scan the table.
    found: dict[int, Contact] = {}
    if phones:
        for contact in _matching(tenant, "phone", phones):
            found[contact.pk] = contact
    if emails:
        for contact in _matching(tenant, "email", emails):
            found.setdefault(contact.pk, contact)
    existing = [found[pk] for pk in sorted(found)]
    by_phone = {c.phone: c for c in existing if c.phone}
    by_email: dict[str, Contact] = {}
    for contact in existing:
        if contact.email:
            by_email.setdefault(contact.email.lower(), contact)
    # Contacts this import made (in this batch or an earlier one): later rows merge into them.
    made_here: dict[int, int] = {}  # id(contact) -> first row number
    # An existing contact an earlier batch matched carries that batch's `updated_at` (always
    # written, see below): a later row is merged into it, not counted "updated" again.
    for contact in existing:
        made = contact.source == Contact.Source.IMPORT and contact.created_at >= ctx.started_at
        if made or contact.updated_at >= ctx.started_at:
            made_here[id(contact)] = 0
    new: list[Contact] = []
    changed: dict[int, Contact] = {}
    row_contacts: list[tuple[_Row, Contact]] = []
    for row in rows:
        contact = by_phone.get(row.phone) if row.phone else None
        if contact is None and row.email:
            candidate = by_email.get(row.email)
            if candidate is not None and (not candidate.phone or not row.phone):
                contact = candidate
        if contact is None:
            contact = _NewContact()
            _apply(contact, row, overwrite=True)
            new.append(contact)
            made_here[id(contact)] = row.number
            result.created += 1
        elif id(contact) in made_here:
            first = made_here[id(contact)]
            if _apply(contact, row, overwrite=False) and contact.pk is not None:
                changed[id(contact)] = contact  # written only when the row filled a blank
            result.duplicates += 1
            key = ("phone", row.phone) if row.phone and contact.phone == row.phone else None
            column = _column_of(ctx, key[0] if key else "email")
            value = row.phone if key else row.email
            message = (
                _("duplicate of row %(row)d") % {"row": first}
                if first
                else _("duplicate of an earlier row")
            )
            errors.append((row.number, column, value, message, OUTCOME_MERGED))
        else:
            if _apply(contact, row, overwrite=contact_import.overwrite) or row.tags or row.company:
                changed[id(contact)] = contact
            if id(contact) not in made_here:
                made_here[id(contact)] = row.number
                result.updated += 1
                result.consented.append(contact)
                changed[id(contact)] = contact  # its new updated_at marks it as matched
        if contact.phone:
            by_phone[contact.phone] = contact
        if contact.email:
            by_email.setdefault(contact.email.lower(), contact)
        row_contacts.append((row, contact))

    _companies(ctx, row_contacts, changed)
    now = timezone.now()
    for contact in new:
        contact.created_at = contact.updated_at = now
    _insert_contacts(tenant, new)
    result.consented.extend(new)
    updates = [c for c in changed.values() if c.pk is not None]
    for contact in updates:
        contact.updated_at = now
    _update_contacts(tenant, updates)
    _tags(tenant, row_contacts)
    _write_report(ctx, errors)
    result.error_lines = len(errors)
    return result


# Columns an import writes. On PostgreSQL a batch is one INSERT … SELECT and one UPDATE … FROM
# over the batch's rows sent as one JSON document (`json_to_recordset`): the same rows as
# bulk_create / bulk_update, without a CASE expression per row and field (which made
# bulk_update the slowest step) and without converting one array per column in Python (the
# JSON is written by the C encoder; that conversion was the next slowest step).
_WRITTEN = [
    ("name", "text"), ("phone", "text"), ("email", "text"), ("language", "text"),
    ("owner_id", "bigint"), ("lifecycle_stage", "text"), ("company_id", "bigint"),
    ("attributes", "jsonb"),
]  # fmt: skip
_UPDATED_FIELDS = [
    "name", "phone", "email", "language", "owner", "lifecycle_stage", "company", "attributes",
    "updated_at",
]  # fmt: skip


def _records(contacts, columns) -> str:
    names = [column for column, _kind in columns]
    return json.dumps(
        [[getattr(c, name) for name in names] for c in contacts], separators=(",", ":")
    )


def _recordset(columns) -> str:
    """Rows of the JSON array of arrays passed as the next parameter, as `v(columns…)`."""
    fields = ", ".join(
        f"(r.j->>{i})::{kind}" if kind != "jsonb" else f"coalesce(r.j->{i}, '{{}}')::jsonb"
        for i, (_column, kind) in enumerate(columns)
    )
    names = ", ".join(column for column, _kind in columns)
    return (
        f"(SELECT r.n, {fields} FROM json_array_elements(%s::json) WITH ORDINALITY AS r(j, n)) "  # noqa: S608
        f"AS v(n, {names})"
    )


def _insert_contacts(tenant, contacts: list[Contact]) -> None:
    if not contacts:
        return
    columns = [*_WRITTEN, ("source", "text")]
    if connection.vendor != "postgresql":
        rows = [
            Contact(
                tenant=tenant,
                created_at=c.created_at,
                updated_at=c.updated_at,
                last_activity_at=c.created_at,
                **{column: getattr(c, column) for column, _kind in columns},
            )
            for c in contacts
        ]
        Contact.objects.bulk_create(rows)
        for contact, row in zip(contacts, rows, strict=True):
            contact.pk = row.pk
        return
    table = Contact._meta.db_table
    names = ", ".join(column for column, _kind in columns)
    values = ", ".join(f"v.{column}" for column, _kind in columns)
    sql = (
        f'INSERT INTO "{table}" (tenant_id, {names}, created_at, updated_at, '  # noqa: S608
        "last_activity_at, processing_restricted_at) "
        f"SELECT %s, {values}, %s, %s, %s, NULL FROM {_recordset(columns)} ORDER BY v.n "
        "RETURNING id"
    )
    stamp = contacts[0].created_at
    with connection.cursor() as cursor:
        cursor.execute(sql, [tenant.pk, stamp, stamp, stamp, _records(contacts, columns)])
        ids = [row[0] for row in cursor.fetchall()]
    for contact, pk in zip(contacts, ids, strict=True):
        contact.pk = pk


def _update_contacts(tenant, contacts: list[Contact]) -> None:
    if not contacts:
        return
    if connection.vendor != "postgresql":
        Contact.objects.bulk_update(contacts, _UPDATED_FIELDS)
        return
    columns = [("id", "bigint"), *_WRITTEN]
    table = Contact._meta.db_table
    assignments = ", ".join(f"{column} = v.{column}" for column, _kind in _WRITTEN)
    # "c.id = ANY(ids)" as well as the join: without it the planner, which cannot see how
    # many rows the JSON holds, hash-joins it against a scan of the whole contact table (each
    # batch then costs more the larger the table); with it, the rows are read by primary key.
    sql = (
        f'UPDATE "{table}" AS c SET {assignments}, updated_at = %s '  # noqa: S608
        f"FROM {_recordset(columns)} WHERE c.id = v.id AND c.id = ANY(%s) AND c.tenant_id = %s"
    )
    ids = [c.pk for c in contacts]
    with connection.cursor() as cursor:
        cursor.execute(sql, [contacts[0].updated_at, _records(contacts, columns), ids, tenant.pk])


def _column_of(ctx: _Context, target: str) -> str:
    for _index, header, mapped in ctx.columns:
        if mapped == target:
            return header
    return ""


def _companies(ctx: _Context, row_contacts, changed) -> None:
    """Link contacts to their company (matched by name, any case; created when missing)."""
    from django.db.models.functions import Lower

    overwrite = ctx.contact_import.overwrite
    wanted: dict[int, tuple[Contact, str]] = {}
    for row, contact in row_contacts:
        if not row.company:
            continue
        if id(contact) in wanted:
            continue  # an earlier row of the file named this contact's company: it wins
        if contact.company_id is None or overwrite:
            wanted[id(contact)] = (contact, row.company)
    if not wanted:
        return
    names = {name.lower(): name for _contact, name in wanted.values()}
    known = {
        c.lname: c
        for c in Company.objects.annotate(lname=Lower("name"))
        .filter(lname__in=list(names))
        .order_by("-id")
    }
    tenant = ctx.contact_import.tenant
    missing = [Company(tenant=tenant, name=name) for key, name in names.items() if key not in known]
    Company.objects.bulk_create(missing)
    known.update({c.name.lower(): c for c in missing})
    for contact, name in wanted.values():
        company = known[name.lower()]
        if contact.company_id != company.pk:
            contact.company_id = company.pk
            if contact.pk is not None:
                changed[id(contact)] = contact


def _tags(tenant, row_contacts) -> None:
    names = {name for row, _contact in row_contacts for name in row.tags}
    if not names:
        return
    Tag.objects.bulk_create([Tag(tenant=tenant, name=n) for n in names], ignore_conflicts=True)
    tag_ids = dict(Tag.objects.filter(name__in=names).values_list("name", "id"))
    links = {
        (contact.pk, tag_ids[name])
        for row, contact in row_contacts
        for name in row.tags
        if name in tag_ids
    }
    if connection.vendor == "postgresql":
        table = ContactTag._meta.db_table
        sql = (
            f'INSERT INTO "{table}" (tenant_id, contact_id, tag_id) '  # noqa: S608
            "SELECT %s, (l->>0)::bigint, (l->>1)::bigint FROM json_array_elements(%s::json) l "
            "ON CONFLICT DO NOTHING"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, [tenant.pk, json.dumps(sorted(links))])
        return
    ContactTag.objects.bulk_create(
        [ContactTag(tenant=tenant, contact_id=c, tag_id=t) for c, t in links],
        ignore_conflicts=True,
    )


def _write_report(ctx: _Context, errors: list) -> None:
    if not errors:
        return
    with open(ctx.report_path, "a", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        for number, column, value, message, outcome in errors:
            writer.writerow([number, escape_cell(column), escape_cell(value), message, outcome])
        out.flush()
        os.fsync(out.fileno())


def _consent_purposes(consent: str) -> list[str]:
    from privacy.models import Purpose

    if consent == ConsentAttestation.MARKETING:
        return [Purpose.TRANSACTIONAL, Purpose.MARKETING]
    if consent == ConsentAttestation.TRANSACTIONAL:
        return [Purpose.TRANSACTIONAL]
    return []


def consent_evidence_text(contact_import: ContactImport) -> str:
    by = contact_import.created_by.email if contact_import.created_by else _("unknown user")
    return _("import #%(id)d: %(file)s, attested by %(user)s: %(text)s") % {
        "id": contact_import.pk,
        "file": contact_import.original_name,
        "user": by,
        "text": contact_import.consent_evidence,
    }


def count_rows(contact_import: ContactImport) -> int:
    count = 0
    with _reader(contact_import) as reader:
        next(reader, None)
        for row in reader:
            if any(cell.strip() for cell in row):
                count += 1
    return count


def _batches(contact_import: ContactImport, *, skip: int, size: int):
    """(row number, cells) lists of `size`, after the first `skip` data records."""
    batch: list = []
    with _reader(contact_import) as reader:
        next(reader, None)
        seen = 0
        for number, cells in enumerate(reader, start=2):
            if not any(cell.strip() for cell in cells):
                continue
            seen += 1
            if seen <= skip:
                continue
            batch.append((number, cells))
            if len(batch) >= size:
                yield batch
                batch = []
    if batch:
        yield batch


class ImportInterrupted(Exception):
    """Raised by `on_batch` hooks (tests, benchmarks) to stop a run as a crash would."""


def run_import(*, contact_import: ContactImport, batch_size: int = BATCH_SIZE, on_batch=None):
    """Import the rows not imported yet; safe to run again after a crash (it resumes)."""
    from channels_app.models import Medium
    from privacy.access_log import Action, record_access
    from privacy.models import ConsentAction, ConsentSource
    from privacy.services import record_consent_bulk

    contact_import.refresh_from_db()
    if contact_import.status == ContactImport.Status.DONE:
        return contact_import
    if contact_import.status not in (ContactImport.Status.RUNNING, ContactImport.Status.MAPPED):
        return contact_import
    if contact_import.started_at is None:
        contact_import.started_at = timezone.now()
        contact_import.status = ContactImport.Status.RUNNING
        contact_import.save(update_fields=["started_at", "status"])
    if not contact_import.total_rows:
        contact_import.total_rows = count_rows(contact_import)
        contact_import.save(update_fields=["total_rows"])
    ctx = _context(contact_import)
    ctx.report_path = _prepare_report(contact_import)
    purposes = _consent_purposes(contact_import.consent)
    evidence = consent_evidence_text(contact_import) if purposes else ""
    done = contact_import.processed_rows
    analyze_at = ANALYZE_FIRST_AT
    created = 0
    for batch in _parsed_batches(ctx, skip=done, size=batch_size):
        with transaction.atomic():
            _commit_without_waiting()
            locked = ContactImport.objects.select_for_update().get(pk=contact_import.pk)
            if locked.processed_rows != done or locked.status != ContactImport.Status.RUNNING:
                logger.info("import %s: another run moved on; this one stops", locked.pk)
                return locked
            try:
                with transaction.atomic():
                    result = _process_batch(ctx, batch)
            except IntegrityError:
                # A contact with one of these phones appeared meanwhile (an inbound message):
                # look the batch up again; this time the lookup finds it.
                logger.info("import %s: a phone was taken meanwhile; batch retried", locked.pk)
                result = _process_batch(ctx, batch)
            if purposes:
                record_consent_bulk(
                    contact_ids=[c.pk for c in result.consented],
                    media=[Medium.WHATSAPP, Medium.SMS],
                    purposes=purposes,
                    action=ConsentAction.GRANTED,
                    source=ConsentSource.IMPORT,
                    evidence=evidence,
                    recorded_by=contact_import.created_by,
                    keep_withdrawals=True,
                )
            done += batch.records
            ContactImport.objects.filter(pk=contact_import.pk).update(
                processed_rows=done,
                created_count=F("created_count") + result.created,
                updated_count=F("updated_count") + result.updated,
                duplicate_count=F("duplicate_count") + result.duplicates,
                skipped_count=F("skipped_count") + result.skipped,
                error_count=F("error_count") + result.error_lines,
            )
        created += result.created
        if created >= analyze_at:
            _refresh_statistics()
            analyze_at *= 2
        if on_batch is not None:
            on_batch(done)
    with transaction.atomic():
        contact_import.refresh_from_db()
        contact_import.status = ContactImport.Status.DONE
        contact_import.finished_at = timezone.now()
        contact_import.total_rows = max(contact_import.total_rows, done)
        contact_import.save(update_fields=["status", "finished_at", "total_rows"])
        record_access(
            action=Action.IMPORTED_CONTACTS,
            actor=contact_import.created_by,
            obj=contact_import,
            detail=_("%(file)s: %(created)d created, %(updated)d updated, %(errors)d problems")
            % {
                "file": contact_import.original_name,
                "created": contact_import.created_count,
                "updated": contact_import.updated_count,
                "errors": contact_import.error_count,
            },
        )
    return contact_import


def _commit_without_waiting() -> None:
    """A batch's commit does not wait for its WAL to reach the disk (PostgreSQL
    `synchronous_commit = off`, this transaction only). Safe here: should the database crash
    before the flush, the batch is lost whole, its progress counter with it, and the rerun
    does it again (the report is cut back to the committed rows)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit = off")


# A large import changes the contact table faster than autovacuum re-reads its statistics;
# with stale ones PostgreSQL misjudges the batch lookups (a table scan per batch). The
# statistics are refreshed each time the import has doubled what it created (10k, 20k, …).
ANALYZE_FIRST_AT = 10_000


def _refresh_statistics() -> None:
    if connection.vendor != "postgresql":
        return
    try:
        with connection.cursor() as cursor:
            cursor.execute(f'ANALYZE "{Contact._meta.db_table}"')
    except Exception:  # statistics are an optimisation: never fail an import for them
        logger.warning("could not refresh the contact table's statistics", exc_info=True)


def mark_failed(*, contact_import: ContactImport, reason: str) -> None:
    ContactImport.objects.filter(pk=contact_import.pk).exclude(
        status=ContactImport.Status.DONE
    ).update(status=ContactImport.Status.FAILED, failure_reason=reason[:300])
