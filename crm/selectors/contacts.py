"""Contact reads: the one place that turns a contact filter into a queryset.

A `ContactFilter` is built from the contact list's query parameters, stored as
`Segment.filters` (`to_params()`), and read back by the list, the CSV export, segment counts
and campaigns (`contacts_matching(filter)`). Pages are keyset-paginated on the sort field and
the id, so a deep page costs what the first one does.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import json
import re
from dataclasses import dataclass, field, fields, replace

from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext_lazy as _

from crm.models import Contact, ContactAttribute, ContactTag, LifecycleStage, Segment

PAGE_SIZE = 50

# sort parameter -> model field; "-" in front for newest / Z first.
SORTS = {
    "name": "name",
    "created": "created_at",
    "updated": "updated_at",
    "activity": "last_activity_at",
}
SORT_LABELS = {
    "name": _("Name A–Z"),
    "-name": _("Name Z–A"),
    "-created": _("Newest first"),
    "created": _("Oldest first"),
    "-updated": _("Recently updated"),
    "updated": _("Least recently updated"),
    "-activity": _("Recent activity"),
    "activity": _("Oldest activity"),
}
DEFAULT_SORT = "name"

CONSENT_MEDIA = ("whatsapp", "sms")
CONSENT_PURPOSES = ("transactional", "marketing")
# "none": nothing recorded for that medium and purpose.
CONSENT_STATES = ("granted", "withdrawn", "none")

_PHONE_CHARS = re.compile(r"^[\d\s+().\-]+$")


def phone_digits(text: str) -> str:
    """The digits of a search that looks like a phone number ("+1 415-555" -> "1415555")."""
    if not _PHONE_CHARS.match(text or ""):
        return ""
    digits = re.sub(r"\D", "", text)
    return digits if len(digits) >= 3 else ""


@dataclass(frozen=True)
class ContactFilter:
    q: str = ""
    tags: tuple[int, ...] = ()  # contacts carrying every one of these tags
    owner: str = ""  # a user id, or "none" for contacts nobody owns
    stage: str = ""
    company: int | None = None
    source: str = ""
    attr: str = ""  # a custom attribute key ...
    attr_value: str = ""  # ... and the value it must have (empty: any value set)
    consent_medium: str = ""
    consent_purpose: str = ""
    consent_state: str = ""
    sort: str = DEFAULT_SORT

    @classmethod
    def from_params(cls, params) -> ContactFilter:
        """From a QueryDict or a dict (a segment's stored filters). Values that make no sense
        are dropped rather than failing the page: a stale bookmark still shows contacts."""

        def get(name: str) -> str:
            value = params.get(name, "")
            if isinstance(value, list):
                value = value[0] if value else ""
            return str(value).strip()

        if hasattr(params, "getlist"):
            raw_tags = params.getlist("tag")
        else:
            raw_tags = params.get("tag") or []
            if not isinstance(raw_tags, list):
                raw_tags = [raw_tags]
        tags = tuple(sorted({int(t) for t in raw_tags if str(t).isdigit()}))
        owner = get("owner")
        if owner != "none" and not owner.isdigit():
            owner = ""
        stage = get("stage")
        if stage not in LifecycleStage.values:
            stage = ""
        source = get("source")
        if source not in Contact.Source.values:
            source = ""
        company = get("company")
        medium, purpose, state = (
            get("consent_medium"),
            get("consent_purpose"),
            get("consent_state"),
        )
        if medium not in CONSENT_MEDIA or purpose not in CONSENT_PURPOSES:
            medium = purpose = state = ""
        if state not in CONSENT_STATES:
            medium = purpose = state = ""
        sort = get("sort")
        if sort.lstrip("-") not in SORTS:
            sort = DEFAULT_SORT
        attr = get("attr")
        if not re.fullmatch(r"[-a-zA-Z0-9_]{1,50}", attr):
            attr = ""
        return cls(
            q=get("q")[:200],
            tags=tags,
            owner=owner,
            stage=stage,
            company=int(company) if company.isdigit() else None,
            source=source,
            attr=attr,
            attr_value=get("attr_value")[:200] if attr else "",
            consent_medium=medium,
            consent_purpose=purpose,
            consent_state=state,
            sort=sort,
        )

    def to_params(self) -> dict:
        """Only what is set, JSON-friendly: the query string and `Segment.filters`."""
        params = {}
        for item in fields(self):
            value = getattr(self, item.name)
            if item.name == "tags":
                if value:
                    params["tag"] = [str(v) for v in value]
            elif item.name == "sort":
                if value != DEFAULT_SORT:
                    params["sort"] = value
            elif value not in ("", None):
                params[item.name] = str(value)
        return params

    def query_items(self) -> list[tuple[str, str]]:
        items = []
        for key, value in self.to_params().items():
            for one in value if isinstance(value, list) else [value]:
                items.append((key, one))
        return items

    @property
    def is_empty(self) -> bool:
        return not {k: v for k, v in self.to_params().items() if k != "sort"}

    def without_sort(self) -> ContactFilter:
        return replace(self, sort=DEFAULT_SORT)


# Above every character: `key < prefix + TOP` closes the range of keys starting with prefix.
TOP = "\U0010ffff"


def _starts_with(field: str, prefix: str) -> Q:
    return Q(**{f"{field}__gte": prefix, f"{field}__lt": prefix + TOP})


def search_query(text: str) -> Q:
    """Name (from its first or its last word), e-mail, or phone starting with the search.

    Only range comparisons on stored keys: PostgreSQL's row-level security lets those use an
    index, while LIKE/ILIKE would read every row of the business first. A phone search is
    the number in international form, typed any way ("+1 415-555", "1415555").
    """
    lowered = " ".join(text.lower().split())
    query = (
        _starts_with("search_name", lowered)
        | _starts_with("search_last_word", lowered)
        | _starts_with("search_email", lowered)
    )
    digits = phone_digits(text)
    if digits:
        query |= _starts_with("phone", "+" + digits) & ~Q(phone="")
    return query


def contacts_matching(filters: ContactFilter) -> QuerySet[Contact]:
    """The active business's contacts that match `filters` (not ordered)."""
    queryset = Contact.objects.all()
    if filters.q:
        queryset = queryset.filter(search_query(filters.q))
    for tag_id in filters.tags:
        queryset = queryset.filter(
            Exists(ContactTag.objects.filter(contact=OuterRef("pk"), tag_id=tag_id))
        )
    if filters.owner == "none":
        queryset = queryset.filter(owner__isnull=True)
    elif filters.owner:
        queryset = queryset.filter(owner_id=int(filters.owner))
    if filters.stage:
        queryset = queryset.filter(lifecycle_stage=filters.stage)
    if filters.company:
        queryset = queryset.filter(company_id=filters.company)
    if filters.source:
        queryset = queryset.filter(source=filters.source)
    if filters.attr:
        if filters.attr_value:
            queryset = queryset.filter(**{f"attributes__{filters.attr}": filters.attr_value})
        else:
            queryset = queryset.filter(attributes__has_key=filters.attr).exclude(
                **{f"attributes__{filters.attr}": ""}
            )
    if filters.consent_state:
        from privacy.models import ConsentState

        states = ConsentState.objects.filter(
            contact=OuterRef("pk"),
            medium=filters.consent_medium,
            purpose=filters.consent_purpose,
        )
        if filters.consent_state == "none":
            queryset = queryset.filter(~Exists(states))
        else:
            queryset = queryset.filter(Exists(states.filter(action=filters.consent_state)))
    return queryset


# --- keyset pages -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ContactRow:
    """What one line of the contact list shows, read with the page's query (no model
    instances, no related managers: building 50 of those cost more than the query)."""

    pk: int
    name: str
    phone: str
    email: str
    lifecycle_stage: str
    owner_name: str
    company_name: str
    created_at: datetime.datetime
    updated_at: datetime.datetime
    last_activity_at: datetime.datetime
    tags: tuple[str, ...] = ()

    @property
    def display_name(self) -> str:
        return self.name or self.phone or self.email or str(_("Unknown contact"))

    @property
    def stage_label(self) -> str:
        return STAGE_LABELS.get(self.lifecycle_stage, self.lifecycle_stage)


STAGE_LABELS = dict(LifecycleStage.choices)

_ROW_FIELDS = (
    "id",
    "name",
    "phone",
    "email",
    "lifecycle_stage",
    "owner__full_name",
    "owner__email",
    "company__name",
    "created_at",
    "updated_at",
    "last_activity_at",
)


@dataclass
class ContactPage:
    contacts: list[ContactRow]
    next_cursor: str | None = None
    is_first: bool = True
    extra: dict = field(default_factory=dict)


def tag_names_of(contact_ids: list[int]) -> dict[int, tuple[str, ...]]:
    """Tag names per contact, A to Z, for a page of contacts in one query."""
    names: dict[int, list[str]] = {}
    rows = (
        ContactTag.objects.filter(contact_id__in=contact_ids)
        .order_by("tag__name", "tag_id")
        .values_list("contact_id", "tag__name")
    )
    for contact_id, name in rows:
        names.setdefault(contact_id, []).append(name)
    return {contact_id: tuple(values) for contact_id, values in names.items()}


def contact_rows(queryset: QuerySet[Contact]) -> list[ContactRow]:
    """The list's rows of an ordered, sliced queryset: two queries, whatever the rows."""
    rows = []
    for (
        pk,
        name,
        phone,
        email,
        stage,
        owner_name,
        owner_email,
        company_name,
        created_at,
        updated_at,
        last_activity_at,
    ) in queryset.values_list(*_ROW_FIELDS):
        rows.append(
            ContactRow(
                pk=pk,
                name=name,
                phone=phone,
                email=email,
                lifecycle_stage=stage,
                owner_name=owner_name or owner_email or "",
                company_name=company_name or "",
                created_at=created_at,
                updated_at=updated_at,
                last_activity_at=last_activity_at,
            )
        )
    if not rows:
        return rows
    tags = tag_names_of([row.pk for row in rows])
    return [replace(row, tags=tags[row.pk]) if row.pk in tags else row for row in rows]


def _sort_field(sort: str) -> tuple[str, bool]:
    return SORTS[sort.lstrip("-")], sort.startswith("-")


def encode_cursor(contact: Contact, sort: str) -> str:
    name, _descending = _sort_field(sort)
    value = getattr(contact, name)
    if isinstance(value, datetime.datetime):
        value = value.isoformat()
    raw = json.dumps([value, contact.pk], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, sort: str):
    """(value, id) from a cursor, or None when it is not one of ours."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value, pk = json.loads(base64.urlsafe_b64decode(padded.encode()).decode())
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        return None
    if not isinstance(pk, int) or not isinstance(value, str):
        return None
    name, _descending = _sort_field(sort)
    if name != "name":
        try:
            value = parse_datetime(value)
        except ValueError:  # well-formed but impossible, like month 13
            return None
        if value is None:
            return None
    return value, pk


def ordered(queryset: QuerySet[Contact], sort: str) -> QuerySet[Contact]:
    name, descending = _sort_field(sort)
    if descending:
        return queryset.order_by(f"-{name}", "-id")
    return queryset.order_by(name, "id")


def after_cursor(queryset: QuerySet[Contact], sort: str, value, pk: int) -> QuerySet[Contact]:
    """Rows after (value, pk) in this sort. The plain `>=` (or `<=`) on the sort field is
    what lets the index start at the cursor; the OR then settles ties on the id."""
    name, descending = _sort_field(sort)
    op = "lt" if descending else "gt"
    return queryset.filter(
        Q(**{f"{name}__{op}e": value}),
        Q(**{f"{name}__{op}": value}) | Q(**{name: value, f"id__{op}": pk}),
    )


def contact_page(filters: ContactFilter, *, cursor: str = "", size: int = PAGE_SIZE) -> ContactPage:
    """One page of the list: owner, company and tags loaded with it (two queries, whatever the
    rows; no COUNT)."""
    queryset = ordered(contacts_matching(filters), filters.sort)
    position = decode_cursor(cursor, filters.sort) if cursor else None
    if position is not None:
        queryset = after_cursor(queryset, filters.sort, *position)
    rows = contact_rows(queryset[: size + 1])
    next_cursor = None
    if len(rows) > size:
        rows = rows[:size]
        next_cursor = encode_cursor(rows[-1], filters.sort)
    return ContactPage(contacts=rows, next_cursor=next_cursor, is_first=position is None)


def iter_matching(filters: ContactFilter, *, batch: int = 2000):
    """Every matching contact in list order, fetched in keyset batches (the CSV export)."""
    sort = filters.sort
    position = None
    while True:
        queryset = ordered(contacts_matching(filters), sort)
        if position is not None:
            queryset = after_cursor(queryset, sort, *position)
        rows = list(queryset.select_related("owner", "company").prefetch_related("tags")[:batch])
        if not rows:
            return
        yield from rows
        name, _descending = _sort_field(sort)
        position = (getattr(rows[-1], name), rows[-1].pk)
        if len(rows) < batch:
            return


# --- segments ---------------------------------------------------------------------------------


def segment_filter(segment: Segment) -> ContactFilter:
    return ContactFilter.from_params(segment.filters or {})


def segment_count(segment: Segment) -> int:
    return contacts_matching(segment_filter(segment)).count()


def segments() -> list[Segment]:
    return list(Segment.objects.order_by("name"))


def attribute_definitions() -> list[ContactAttribute]:
    return list(ContactAttribute.objects.order_by("position", "label", "id"))
