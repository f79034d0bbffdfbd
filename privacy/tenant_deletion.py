"""Tenant deletion (P10): an owner exports everything, then asks for the business to be deleted.

- `request_deletion`: the business is locked at once (every page under /app/<slug>/ shows the
  "deletion scheduled" page, its webhooks answer 410, nothing is sent, its Celery tasks do
  nothing) for `TENANT_DELETION_GRACE_DAYS` (30 by default), during which an owner can
  `restore` it;
- `purge_due_tenants` (Celery beat, daily) then removes every row of each business whose grace
  period is over: every tenant-owned model, children first, in batches that each commit (an
  interrupted purge continues on the next run), the files its rows point at, its memberships,
  and finally the business itself.
- `request_export` queues an export of every row of the business (owners, also while it is
  locked); Celery builds the zip (`prepare_export`) and the deletion page offers it until its
  link expires, or until a customer's erasure removes it (`remove_exports_after_erasure`).
- People's accounts stay: an account is the person's own (they may belong to other businesses
  or create a new one); only their membership of the deleted business goes.
- Database backups still hold the business until they roll off, `BACKUP_RETENTION_DAYS` (90)
  after the purge; the deletion page says so.
"""

from __future__ import annotations

import datetime
import json
import logging
import secrets
import tempfile
import time
import zipfile
from collections.abc import Callable

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files import File
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from privacy import export as export_module
from privacy import security
from privacy.models import BusinessExport, SecurityEvent
from salesos.encryption import EncryptedTextField
from tenants.context import require_current_tenant, tenant_context
from tenants.models import Membership, Tenant, tenant_owned_models

log = logging.getLogger(__name__)

BATCH_SIZE = 2000
# How often a run writing an export of everything notes that it still moves: far more often
# than BusinessExport.STALLED_AFTER, after which an export is taken as lost, and seldom enough
# to cost nothing next to the writing.
PROGRESS_EVERY = datetime.timedelta(seconds=30)


class DeletionError(ValidationError):
    pass


def grace_period() -> datetime.timedelta:
    return datetime.timedelta(days=settings.TENANT_DELETION_GRACE_DAYS)


@transaction.atomic
def request_deletion(
    *, tenant: Tenant, by: Membership, confirm_slug: str, now: datetime.datetime | None = None
) -> Tenant:
    """Lock the business and schedule its deletion; the owner confirms by typing its address."""
    if by.tenant_id != tenant.pk or not by.is_owner:
        raise DeletionError(_("Only an owner can delete the business."))
    if confirm_slug.strip() != tenant.slug:
        message = _("Type the business's address, %(slug)s, to confirm.") % {"slug": tenant.slug}
        raise DeletionError({"confirm_slug": message})
    tenant = Tenant.objects.select_for_update().get(pk=tenant.pk)
    if tenant.is_locked:
        return tenant  # asked twice: the first request's dates stand
    now = now or timezone.now()
    tenant.status = Tenant.Status.DELETION_REQUESTED
    tenant.deletion_requested_at = now
    tenant.deletion_requested_by = by.user
    tenant.deletion_due_at = now + grace_period()
    tenant.save(
        update_fields=[
            "status",
            "deletion_requested_at",
            "deletion_requested_by",
            "deletion_due_at",
        ]
    )
    with tenant_context(tenant):
        security.record_event(
            kind=SecurityEvent.Kind.DELETION_REQUESTED,
            detail=_("by %(email)s; due %(due)s")
            % {"email": by.user.email, "due": tenant.deletion_due_at.date().isoformat()},
            user=by.user,
            now=now,
        )
    log.info("tenant %s deletion requested, due %s", tenant.pk, tenant.deletion_due_at)
    return tenant


@transaction.atomic
def restore(*, tenant: Tenant, by: Membership, now: datetime.datetime | None = None) -> Tenant:
    """Cancel a scheduled deletion during the grace period."""
    if by.tenant_id != tenant.pk or not by.is_owner:
        raise DeletionError(_("Only an owner can restore the business."))
    tenant = Tenant.objects.select_for_update().get(pk=tenant.pk)
    if not tenant.is_locked:
        return tenant
    now = now or timezone.now()
    if tenant.deletion_due_at and tenant.deletion_due_at <= now:
        raise DeletionError(_("The grace period is over; the business is being deleted."))
    tenant.status = Tenant.Status.ACTIVE
    tenant.deletion_requested_at = None
    tenant.deletion_requested_by = None
    tenant.deletion_due_at = None
    tenant.save(
        update_fields=[
            "status",
            "deletion_requested_at",
            "deletion_requested_by",
            "deletion_due_at",
        ]
    )
    with tenant_context(tenant):
        security.record_event(
            kind=SecurityEvent.Kind.DELETION_CANCELLED,
            detail=_("by %(email)s") % {"email": by.user.email},
            user=by.user,
            now=now,
        )
    return tenant


def due_tenants(*, now: datetime.datetime | None = None) -> list[Tenant]:
    now = now or timezone.now()
    return list(
        Tenant.objects.filter(
            status=Tenant.Status.DELETION_REQUESTED, deletion_due_at__lte=now
        ).order_by("deletion_due_at", "pk")
    )


def purge_due_tenants(*, now: datetime.datetime | None = None) -> int:
    """Remove every business whose grace period is over; returns how many went."""
    done = 0
    for tenant in due_tenants(now=now):
        purge_tenant(tenant=tenant)
        done += 1
    return done


def deletion_order() -> list[type[models.Model]]:
    """Every tenant-owned model, each before the models it points at (children first), so no
    delete cascades into a large set and no protected reference blocks one."""
    tenant_models = tenant_owned_models()
    known = set(tenant_models)
    children: dict = {}
    for model in tenant_models:
        for field in model._meta.concrete_fields:
            target = field.related_model if field.is_relation else None
            if target in known and target is not model:
                children.setdefault(target, []).append(model)
    ordered: list[type[models.Model]] = []
    visiting: set = set()

    def visit(model) -> None:
        if model in ordered or model in visiting:
            return
        visiting.add(model)
        # Models holding a key to this one (hidden reverse relations included) go first.
        for child in children.get(model, ()):
            visit(child)
        visiting.discard(model)
        ordered.append(model)

    for model in sorted(tenant_models, key=lambda m: m._meta.label):
        visit(model)
    return ordered


def purge_tenant(*, tenant: Tenant, batch_size: int = BATCH_SIZE) -> dict[str, int]:
    """Delete every row of `tenant`, then the tenant. Safe to run again after an interruption."""
    if not tenant.is_locked:
        raise DeletionError(_("Only a business scheduled for deletion can be purged."))
    removed: dict[str, int] = {}
    with tenant_context(tenant):
        for model in deletion_order():
            removed[model._meta.label] = _delete_all(model, batch_size=batch_size)
        with transaction.atomic():
            Membership.objects.filter(tenant=tenant).delete()
            Tenant.objects.filter(pk=tenant.pk).delete()
    log.info("tenant %s purged: %s rows", tenant.pk, sum(removed.values()))
    return removed


def _delete_all(model, *, batch_size: int) -> int:
    file_fields = [f for f in model._meta.concrete_fields if isinstance(f, models.FileField)]
    total = 0
    while True:
        with transaction.atomic():
            ids = list(model.objects.order_by("pk").values_list("pk", flat=True)[:batch_size])
            if not ids:
                return total
            batch = model.objects.filter(pk__in=ids)
            if file_fields:
                for row in batch.only("pk", *(f.name for f in file_fields)):
                    for field in file_fields:
                        value = getattr(row, field.name)
                        if value and value.name:
                            value.storage.delete(value.name)
            batch.only("pk").delete()
            total += len(ids)


# --- Export everything ------------------------------------------------------------------------
#
# `request_export` (the owner's click) records a queued `BusinessExport` and hands it to Celery
# (`privacy.tasks.prepare_business_export` → `prepare_export`), which writes the zip and stores
# it; the deletion page then offers it until its link expires (`export_file_retention_days`,
# like data request archives). Expired files are deleted by `expire_exports` (beat) or by the
# download that finds them expired. Each export holds every customer, so a customer's erasure
# deletes the ready one's file and sends one being prepared back to the queue
# (`remove_exports_after_erasure`). A run notes its progress as it writes; an export that has
# not moved for `BusinessExport.STALLED_AFTER` (its queue message or its worker was lost) is
# queued again by the owner's next click.


def _exported_fields(model) -> list[str]:
    # Provider secrets are never exported, not even to an owner.
    return [
        field.attname
        for field in model._meta.concrete_fields
        if not isinstance(field, EncryptedTextField)
    ]


def write_everything(
    handle,
    *,
    tenant: Tenant,
    batch_size: int = BATCH_SIZE,
    progress: Callable[[], None] | None = None,
) -> int:
    """Write a zip of every row of the business into the binary file `handle`, one JSON-lines
    file per model, reading each model in primary-key batches (`progress()` is called after
    each); returns the number of rows."""
    rows = 0
    with tenant_context(tenant), zipfile.ZipFile(handle, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(
            "README.txt",
            _(
                "Everything %(name)s holds on Sales OS, exported %(when)s.\n"
                "One file per table; each line is one row as JSON. Provider secrets are left out."
            )
            % {"name": tenant.name, "when": timezone.now().isoformat(timespec="seconds")},
        )
        for model in sorted(tenant_owned_models(), key=lambda m: m._meta.label):
            if model._meta.app_label == "probe":
                continue
            fields = _exported_fields(model)
            with archive.open(f"{model._meta.label}.jsonl", "w", force_zip64=True) as out:
                last = None
                while True:
                    queryset = model.objects.order_by("pk")
                    if last is not None:
                        queryset = queryset.filter(pk__gt=last)
                    batch = list(queryset.values(*fields)[:batch_size])
                    if not batch:
                        break
                    for row in batch:
                        out.write(json.dumps(row, cls=DjangoJSONEncoder).encode() + b"\n")
                    rows += len(batch)
                    last = batch[-1]["id"]
                    if progress is not None:
                        progress()
    return rows


def latest_export() -> BusinessExport | None:
    """The active business's most recent export, whatever its state."""
    return BusinessExport.objects.order_by("-requested_at", "-id").first()


def request_export(*, tenant: Tenant, by: Membership) -> tuple[BusinessExport, bool]:
    """Queue an export of everything (an owner, also while the business is locked).

    Returns (export, queued): while one is queued or being prepared, that one is returned and
    nothing new starts, unless it has stalled (`BusinessExport.STALLED_AFTER`: its message or
    its worker was lost); then that same export is queued again."""
    from privacy import tasks

    if by.tenant_id != tenant.pk or not by.is_owner:
        raise DeletionError(_("Only an owner can export the whole business."))
    with transaction.atomic():
        # One click at a time per business; the partial unique constraint is the last word.
        Tenant.objects.select_for_update().only("pk").get(pk=tenant.pk)
        # Locked too: a run starting it or noting its progress meanwhile waits for this click.
        current = (
            BusinessExport.objects.select_for_update()
            .filter(status__in=BusinessExport.IN_PROGRESS)
            .order_by("-requested_at", "-id")
            .first()
        )
        if current is not None:
            if not current.is_stalled():
                return current, False
            log.warning(
                "business export %s of tenant %s had not moved since %s: queued again",
                current.pk,
                tenant.pk,
                current.last_moved_at,
            )
            queued = _queue_again(current)
            current.refresh_from_db()
            return current, queued
        export = BusinessExport.objects.create(
            requested_by=by.user, requested_by_label=by.user.email
        )
        tenant_id, export_id = tenant.pk, export.pk
        transaction.on_commit(lambda: tasks.prepare_business_export.delay(tenant_id, export_id))
    return export, True


def _storage():
    return BusinessExport._meta.get_field("file").storage


def prepare_export(*, export_id: int, batch_size: int = BATCH_SIZE) -> BusinessExport | None:
    """Write and store the archive of a queued export (the Celery task). Safe to run twice: a
    ready or failed export is left alone; one found running (its worker died) starts over, and
    the file its first run named is deleted. A failure marks it failed, with no file left."""
    tenant = require_current_tenant()
    storage = _storage()
    with transaction.atomic():
        export = BusinessExport.objects.select_for_update().filter(pk=export_id).first()
        if export is None or not export.in_progress:
            return export
        if export.file.name:  # an earlier run of this export was interrupted
            storage.delete(export.file.name)
        name = f"exports/{tenant.pk}/business-{secrets.token_urlsafe(24)}.zip"
        export.status = BusinessExport.Status.RUNNING
        export.started_at = export.progress_at = timezone.now()
        export.file.name = name
        export.save(update_fields=["status", "started_at", "progress_at", "file"])
    stored = ""
    progress = _Progress(export_id=export_id, name=name)
    try:
        with tempfile.TemporaryFile() as handle:
            rows = write_everything(handle, tenant=tenant, batch_size=batch_size, progress=progress)
            size = handle.tell()
            handle.seek(0)
            stored = storage.save(name, File(_ReadingReports(handle, progress), name=name))
        with transaction.atomic():
            done = BusinessExport.objects.filter(
                pk=export_id, status=BusinessExport.Status.RUNNING, file=name
            ).update(
                status=BusinessExport.Status.READY,
                file=stored,
                rows=rows,
                size=size,
                finished_at=timezone.now(),
                expires_at=export_module.expiry_for(tenant),
            )
    except Exception as exc:
        log.exception("business export %s of tenant %s failed", export_id, tenant.pk)
        try:
            storage.delete(stored or name)
        except Exception:
            log.exception("business export %s: its partial file %s stays", export_id, name)
        # Unless it was queued again meanwhile (an erasure): then the next run stands.
        BusinessExport.objects.filter(
            pk=export_id, status=BusinessExport.Status.RUNNING, file=name
        ).update(
            status=BusinessExport.Status.FAILED,
            file="",
            finished_at=timezone.now(),
            failure_reason=f"{type(exc).__name__}: {exc}"[:300],
        )
        return BusinessExport.objects.filter(pk=export_id).first()
    if not done:
        # Another run of the same export took over meanwhile (its file stands), or an erasure
        # sent it back to the queue because this archive may hold the erased customer.
        storage.delete(stored)
        return BusinessExport.objects.filter(pk=export_id).first()
    _replace_older(export_id)
    log.info("business export %s of tenant %s ready: %s rows", export_id, tenant.pk, rows)
    return BusinessExport.objects.get(pk=export_id)


class _Progress:
    """Notes on an export being written, at most every PROGRESS_EVERY, that its run still
    moves (so it is not taken as stalled), as long as the export is still this run's."""

    def __init__(self, *, export_id: int, name: str):
        self.export_id, self.name = export_id, name
        self.noted = time.monotonic()

    def __call__(self) -> None:
        if time.monotonic() - self.noted < PROGRESS_EVERY.total_seconds():
            return
        self.noted = time.monotonic()
        BusinessExport.objects.filter(
            pk=self.export_id, status=BusinessExport.Status.RUNNING, file=self.name
        ).update(progress_at=timezone.now())


class _ReadingReports:
    """A file whose reads note progress: storing a large archive takes a while too."""

    def __init__(self, handle, progress: _Progress):
        self._handle, self._progress = handle, progress

    def read(self, *args):
        self._progress()
        return self._handle.read(*args)

    def __getattr__(self, name):
        return getattr(self._handle, name)


def _replace_older(export_id: int) -> None:
    """A new export replaces the earlier ones: their files go, their links expire now."""
    older = BusinessExport.objects.exclude(file="").filter(
        pk__lt=export_id, status=BusinessExport.Status.READY
    )
    for export in older:
        withdraw_file(export)


def withdraw_file(
    export: BusinessExport, *, now: datetime.datetime | None = None, because: str = ""
) -> None:
    """Delete an export's file and end its link (expired, replaced by a newer export, or
    removed `because` of something the deletion page explains)."""
    now = now or timezone.now()
    if export.file.name:
        export.file.storage.delete(export.file.name)
    expires_at = min(export.expires_at, now) if export.expires_at else now
    changes = {"file": "", "expires_at": expires_at}
    if because:
        changes["removed_because"] = because
    BusinessExport.objects.filter(pk=export.pk).update(**changes)
    export.file.name, export.expires_at = "", expires_at
    export.removed_because = changes.get("removed_because", export.removed_because)


def remove_exports_after_erasure() -> int:
    """A customer of the active business was just erased, and every export of the business
    holds them: the ready exports' files are deleted and their links end (the deletion page
    says why), and an export being written goes back to the queue to start over, so nothing
    it read before the erasure is ever offered. Returns how many files were deleted. Safe to
    run twice.

    Called once the customer's rows are gone. The export being written goes back to the queue
    first: a run that marks its export ready before that is caught by the second step, and
    one that tries after it no longer finds its export running (`prepare_export`)."""
    for export in BusinessExport.objects.filter(status=BusinessExport.Status.RUNNING):
        _queue_again(export, discard_file=True)
    removed = 0
    ready = BusinessExport.objects.exclude(file="").filter(status=BusinessExport.Status.READY)
    for export in ready:
        withdraw_file(export, because=BusinessExport.RemovedBecause.ERASURE)
        removed += 1
    if removed:
        log.info("%s business export file(s) removed after an erasure", removed)
    return removed


def _queue_again(export: BusinessExport, *, discard_file: bool = False) -> bool:
    """Send an export in progress back to the queue, to be written from the start by a new
    task. The name of the file its earlier run was writing stays on it, so the next run deletes
    that file if it was stored after all; `discard_file` deletes it now too."""
    from privacy import tasks

    with transaction.atomic():
        queued = BusinessExport.objects.filter(
            pk=export.pk, status__in=BusinessExport.IN_PROGRESS
        ).update(status=BusinessExport.Status.QUEUED, progress_at=timezone.now())
        if not queued:
            return False
        tenant_id, export_id = export.tenant_id, export.pk
        transaction.on_commit(lambda: tasks.prepare_business_export.delay(tenant_id, export_id))
    if discard_file and export.file.name:
        _storage().delete(export.file.name)
    log.info("business export %s of tenant %s queued again", export_id, tenant_id)
    return True


def expire_exports(*, now: datetime.datetime | None = None) -> int:
    """Delete the active business's export files whose link has expired. Safe to run twice."""
    now = now or timezone.now()
    expired = BusinessExport.objects.exclude(file="").filter(
        status=BusinessExport.Status.READY, expires_at__lte=now
    )
    removed = 0
    for export in expired:
        withdraw_file(export, now=now)
        removed += 1
    return removed
