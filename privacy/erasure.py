"""Erasure (P8): delete or anonymise a subject's rows across the registry, then verify.

Each registry entry is handled by its declared kind:
- DELETE and SCAN_AND_DELETE: the rows go, in bounded batches (uploaded files with them);
- ANONYMISE and KEEP_PROOF: the declared personal fields are blanked and the link to the
  person (the first step of `subject_path`) is cut; the row stays as the business's record or
  as proof. Rows of such models that are not the person's but whose personal fields mention
  them (an access-log line naming the address searched for, another customer's consent
  evidence quoting the number) keep their owner: only the fields that mention them are blanked.
Rows are handled deepest first (status events before messages before conversations before the
contact), so every batch is small and a run that is interrupted is finished by the next one.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import models, transaction
from django.db.models import signals
from django.db.models.deletion import get_candidate_relations_to_delete

from privacy import subjects
from privacy.registry import Erasure, PersonalData
from privacy.subjects import Subject

BATCH = 2000


def _blank_value(field: models.Field):
    if isinstance(field, models.JSONField):
        return field.get_default()
    if isinstance(field, (models.CharField, models.TextField, models.FileField)):
        return ""
    if field.null:
        return None
    return field.get_default()


def _delete_files(entry: PersonalData, queryset) -> int:
    names = subjects.file_fields(entry)
    removed = 0
    if not names:
        return removed
    for obj in queryset.only("pk", *names).iterator(chunk_size=200):
        for name in names:
            fieldfile = getattr(obj, name)
            if fieldfile:
                fieldfile.storage.delete(fieldfile.name)
                removed += 1
    return removed


def _delete_in_batches(model, queryset) -> int:
    deleted = 0
    while True:
        ids = list(queryset.order_by().values_list("pk", flat=True)[:BATCH])
        if not ids:
            return deleted
        with transaction.atomic():
            deleted += _delete_ids(model, ids)


def _delete_ids(model, ids: list) -> int:
    """Delete rows by primary key, applying each reverse relation's `on_delete` by key in SQL
    (cascade, set null, protect), which is what Django's collector does, without loading the
    rows. Models with delete signals or relations of another kind go through the collector."""
    # Every relation pointing here, hidden ones (related_name="+", M2M through rows) included.
    relations = list(get_candidate_relations_to_delete(model._meta))
    handled = (models.CASCADE, models.SET_NULL, models.PROTECT, models.DO_NOTHING)
    plain = not (
        signals.pre_delete.has_listeners(model)
        or signals.post_delete.has_listeners(model)
        or any(r.field.remote_field.on_delete not in handled for r in relations)
    )
    if not plain:
        _count, per_model = model._default_manager.filter(pk__in=ids).only("pk").delete()
        return per_model.get(model._meta.label, 0)
    for relation in relations:
        field = relation.field
        related = relation.related_model._base_manager.filter(**{f"{field.attname}__in": ids})
        on_delete = field.remote_field.on_delete
        if on_delete is models.CASCADE:
            child_ids = list(related.values_list("pk", flat=True))
            for start in range(0, len(child_ids), BATCH):
                _delete_ids(relation.related_model, child_ids[start : start + BATCH])
        elif on_delete is models.SET_NULL:
            related.update(**{field.attname: None})
        elif on_delete is models.PROTECT and related.exists():
            raise models.ProtectedError(
                f"{relation.related_model._meta.label} rows still refer to these "
                f"{model._meta.label} rows",
                set(),
            )
    return model._default_manager.filter(pk__in=ids)._raw_delete(model._default_manager.db)


def _anonymise_updates(entry: PersonalData) -> dict:
    model = entry.model
    updates = {name: _blank_value(model._meta.get_field(name)) for name in entry.fields}
    if entry.subject_path:
        link = model._meta.get_field(entry.subject_path.split("__")[0])
        if link.null:
            updates[link.name] = None
    return updates


def erase_subject(subject: Subject, *, keep: dict[str, Iterable[int]] | None = None) -> dict:
    """Erase everything the registry holds for `subject` in the active business.

    `keep` names rows left for the caller to finish ({label: ids}: the request being carried
    out blanks itself last). Returns {label: {"action": kind, "rows": n, "files": n}}.
    """
    keep = {label: list(ids) for label, ids in (keep or {}).items()}
    report: dict[str, dict] = {}
    for entry in subjects.customer_entries():
        queryset = subjects.all_rows(entry, subject)
        if entry.label in keep:
            queryset = queryset.exclude(pk__in=keep[entry.label])
        if not queryset.exists():
            continue
        target = queryset
        files = _delete_files(entry, target)
        if entry.erasure in (Erasure.DELETE, Erasure.SCAN_AND_DELETE):
            rows = _delete_in_batches(entry.model, target)
        else:
            rows = _anonymise_all(entry, target)
        report[entry.label] = {"action": entry.erasure.value, "rows": rows, "files": files}
    for entry in subjects.customer_entries():
        blanked = _blank_mentions(entry, subject, keep=keep.get(entry.label, ()))
        if blanked:
            item = report.setdefault(
                entry.label, {"action": entry.erasure.value, "rows": 0, "files": 0}
            )
            item["rows"] += blanked
    return report


def _blank_mentions(entry: PersonalData, subject: Subject, *, keep: Iterable[int] = ()) -> int:
    """Blank, field by field, what mentions the subject in rows kept on erasure that belong to
    someone else (or no one). Returns how many rows changed."""
    if entry.erasure not in (Erasure.ANONYMISE, Erasure.KEEP_PROOF):
        return 0
    changed: set = set()
    for name in entry.fields:
        mentioning = subjects.rows_mentioning(entry, subject, fields=(name,))
        ids = list(mentioning.exclude(pk__in=list(keep)).order_by().values_list("pk", flat=True))
        blank = {name: _blank_value(entry.model._meta.get_field(name))}
        for start in range(0, len(ids), BATCH):
            with transaction.atomic():
                entry.model.objects.filter(pk__in=ids[start : start + BATCH]).update(**blank)
        changed.update(ids)
    return len(changed)


def _anonymise_all(entry: PersonalData, queryset) -> int:
    updates = _anonymise_updates(entry)
    if not updates:
        return 0
    # Blanking a field or cutting the link can take a row out of the match: fix the ids first.
    ids = list(queryset.order_by().values_list("pk", flat=True))
    changed = 0
    for start in range(0, len(ids), BATCH):
        with transaction.atomic():
            changed += entry.model.objects.filter(pk__in=ids[start : start + BATCH]).update(
                **updates
            )
    return changed


def verify(subject: Subject, *, exclude: dict[str, Iterable[int]] | None = None) -> dict:
    """Search every registered field for the subject's identifiers after an erasure."""
    hits = subjects.search_every_field(subject, exclude=exclude)
    return {
        "clean": not hits,
        "hits": hits,
        "searched_models": len(subjects.REGISTRY),
        "searched_forms": len(subject.mentions),
    }
