"""The personal-data registry: every tenant-owned model says, next to its app's models (in
`<app>/personal_data.py`), which of its fields hold personal data, how its rows are found for a
data subject (a `crm.Contact`), how they are exported and erased, and which retention category
governs them. Export, erasure and retention read this registry, and a test fails when a
tenant-owned model is missing from it, so a new model cannot escape them."""

from __future__ import annotations

import dataclasses
import enum

from django.apps import apps
from django.db import models


class Erasure(enum.StrEnum):
    # The rows go (they exist only because of the subject).
    DELETE = "delete"
    # The personal fields are blanked; the row stays for the business's records.
    ANONYMISE = "anonymise"
    # Anonymised and kept as proof that something happened (consent, a done request).
    KEEP_PROOF = "keep_proof"
    # Not linked to a subject by key: rows whose personal fields mention one of the subject's
    # identifiers are deleted (raw webhook payloads and the like).
    SCAN_AND_DELETE = "scan_and_delete"
    # Holds no customer's personal data (configuration, or the team's own records).
    NOT_CUSTOMER_DATA = "not_customer_data"


class Retention(enum.StrEnum):
    # Kept while the business keeps the contact (erasure or tenant deletion removes it).
    CONTACT = "contact"
    # Tenant.message_retention_days after the conversation is resolved.
    MESSAGES = "messages"
    # Tenant.webhook_payload_retention_days.
    WEBHOOK_PAYLOADS = "webhook_payloads"
    # Tenant.access_log_retention_days.
    ACCESS_LOG = "access_log"
    # Tenant.export_file_retention_days.
    EXPORT_FILES = "export_files"
    # Configuration and records of the business itself: kept until the tenant is deleted.
    BUSINESS = "business"


# Categories the retention purge removes by age, each with the tenant setting that says after
# how many days (0 = keep); every model declared in one of them names its `expires_by` moment.
TIMED_CATEGORIES: dict[Retention, str] = {
    Retention.MESSAGES: "message_retention_days",
    Retention.WEBHOOK_PAYLOADS: "webhook_payload_retention_days",
    Retention.ACCESS_LOG: "access_log_retention_days",
    Retention.EXPORT_FILES: "export_file_retention_days",
}


@dataclasses.dataclass(frozen=True)
class Unmatched:
    """How long rows are kept while a foreign key of theirs is still empty (a delivery status
    that arrived for a message we never matched): another timed category, from another moment."""

    # The foreign key that is empty until the row is matched.
    key: str
    retention: Retention
    expires_by: str


@dataclasses.dataclass(frozen=True)
class PersonalData:
    model: type[models.Model]
    # Fields that can hold personal data of a customer: exported, erased, and searched by the
    # post-erasure verification.
    fields: tuple[str, ...]
    # ORM path from this model to its `crm.Contact` ("" for Contact itself), or None when rows
    # are not linked to a subject by key.
    subject_path: str | None
    erasure: Erasure
    retention: Retention
    # Fields holding one of the subject's identifiers (phone, e-mail) as such: rows whose
    # field equals one also belong to the subject, linked or not (a data request for someone
    # the business does not know yet).
    match_fields: tuple[str, ...] = ()
    # Why, for whoever reads the registry (the privacy centre shows it).
    note: str = ""
    # For a category the purge enforces by age (TIMED_CATEGORIES): the ORM path to the moment
    # a row's retention starts ("received_at", "conversation__resolved_at"). A row whose moment
    # is empty (a conversation not resolved yet) is kept.
    expires_by: str | None = None
    # For a category the purge enforces by age: the columns, after the tenant, of an index the
    # purge walks the business's rows in, a slice at a time (keyset, ties in key order; none
    # may be null). With an index that leads with the tenant, each slice reads what it returns
    # however the business's rows interleave with other businesses' and however many expired.
    purge_walk: tuple[str, ...] = ("id",)
    # Rows whose `unmatched.key` is empty never reach `expires_by` (it runs through that key):
    # they are purged by this rule instead.
    unmatched: Unmatched | None = None
    # Set on the entry `timed_entries` derives from `unmatched`: it covers only rows whose
    # `when_empty` key is empty.
    when_empty: str = ""

    @property
    def label(self) -> str:
        return self.model._meta.label


REGISTRY: dict[str, PersonalData] = {}


def declare(
    model: type[models.Model],
    *,
    fields: tuple[str, ...] = (),
    subject_path: str | None = None,
    erasure: Erasure,
    retention: Retention,
    match_fields: tuple[str, ...] = (),
    note: str = "",
    expires_by: str | None = None,
    purge_walk: tuple[str, ...] = ("id",),
    unmatched: Unmatched | None = None,
) -> PersonalData:
    """Declare one model; called at import time by each app's `personal_data` module."""
    entry = PersonalData(
        model=model,
        fields=tuple(fields),
        subject_path=subject_path,
        erasure=erasure,
        retention=retention,
        match_fields=tuple(match_fields),
        note=note,
        expires_by=expires_by,
        purge_walk=tuple(purge_walk),
        unmatched=unmatched,
    )
    REGISTRY[entry.label] = entry
    return entry


def entry_for(model: type[models.Model] | str) -> PersonalData | None:
    label = model if isinstance(model, str) else model._meta.label
    return REGISTRY.get(label)


def tenant_owned_models() -> list[type[models.Model]]:
    from tenants.models import TenantOwned

    return [
        model
        for model in apps.get_models()
        if issubclass(model, TenantOwned) and model._meta.app_label != "probe"
    ]


def problems() -> list[str]:
    """What is wrong with the registry: undeclared tenant-owned models, unknown fields,
    subject paths that do not lead to a contact. Empty when all is well."""
    from crm.models import Contact

    found = []
    for model in tenant_owned_models():
        entry = entry_for(model)
        if entry is None:
            found.append(f"{model._meta.label} is not declared in its app's personal_data.py")
            continue
        names = {field.name for field in model._meta.get_fields()}
        for name in (*entry.fields, *entry.match_fields):
            if name not in names:
                found.append(f"{entry.label}: no field named {name!r}")
        if entry.subject_path is not None:
            target = _follow(model, entry.subject_path)
            if target is not Contact:
                found.append(f"{entry.label}: {entry.subject_path!r} does not lead to a contact")
        if entry.erasure is Erasure.SCAN_AND_DELETE and not entry.fields:
            found.append(f"{entry.label}: scanned for identifiers but declares no fields")
        found.extend(_retention_problems(model, entry))
    return found


def _retention_problems(model, entry: PersonalData) -> list[str]:
    if entry.retention not in TIMED_CATEGORIES:
        if entry.expires_by:
            return [f"{entry.label}: expires_by is only for {', '.join(TIMED_CATEGORIES)}"]
        return []
    if not entry.expires_by:
        return [
            f"{entry.label}: retention {entry.retention} is purged by age; declare "
            "expires_by= (the date-time field its retention counts from)"
        ]
    *path, last = entry.expires_by.split("__")
    owner = _follow(model, "__".join(path)) if path else model
    try:
        field = owner._meta.get_field(last) if owner is not None else None
    except Exception:
        field = None
    if not isinstance(field, models.DateTimeField):
        return [f"{entry.label}: expires_by {entry.expires_by!r} is not a date-time field"]
    return _walk_problems(model, entry) + _unmatched_problems(model, entry)


def _unmatched_problems(model, entry: PersonalData) -> list[str]:
    rule = entry.unmatched
    if rule is None:
        return []
    try:
        key, moment = model._meta.get_field(rule.key), model._meta.get_field(rule.expires_by)
    except Exception:
        return [f"{entry.label}: unmatched names a field it does not have"]
    if not (key.is_relation and key.null) or not entry.expires_by.startswith(f"{rule.key}__"):
        return [f"{entry.label}: unmatched.key must be a nullable key that expires_by runs through"]
    if rule.retention not in TIMED_CATEGORIES or not isinstance(moment, models.DateTimeField):
        return [f"{entry.label}: unmatched needs a timed category and a date-time field"]
    return []


def _walk_problems(model, entry: PersonalData) -> list[str]:
    columns = {field.column: field for field in model._meta.concrete_fields}
    walked = [columns.get(column) for column in entry.purge_walk]
    if None in walked:
        return [f"{entry.label}: purge_walk {entry.purge_walk!r} names a column it does not have"]
    if any(field.null for field in walked):
        return [f"{entry.label}: purge_walk {entry.purge_walk!r} has a column that can be null"]
    return []


def entries_in(category: Retention) -> list[PersonalData]:
    """The declared models of one retention category."""
    return [entry for entry in REGISTRY.values() if entry.retention == category]


def timed_entries(category: Retention) -> list[PersonalData]:
    """What the purge removes by age under `category`'s policy: the models declared in it, and
    the unmatched rows of models that send those here (as entries of their own, `when_empty`)."""
    return entries_in(category) + [
        dataclasses.replace(
            entry,
            retention=category,
            expires_by=entry.unmatched.expires_by,
            when_empty=entry.unmatched.key,
            unmatched=None,
        )
        for entry in REGISTRY.values()
        if entry.unmatched is not None and entry.unmatched.retention == category
    ]


def _follow(model, path: str):
    if path == "":
        return model
    for name in path.split("__"):
        try:
            field = model._meta.get_field(name)
        except Exception:
            return None
        model = field.related_model
        if model is None:
            return None
    return model
