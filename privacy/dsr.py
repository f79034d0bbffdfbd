"""Data subject requests (P6, P7): log, find, confirm, carry out, and the overdue reminders.

`create_request` logs a request from the dashboard, the API or a customer's message, gives it
its due date and records what the registry finds for the subject, so a person sees what will
be touched before anything happens. `confirm_request` hands it to Celery
(`privacy.tasks.run_data_request` → `carry_out`), which is safe to run twice: a done request
is left alone.
"""

from __future__ import annotations

import hashlib
import hmac
import logging

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import Q
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from privacy import deadlines, erasure, export, subjects, tenant_deletion
from privacy.access_log import Action, record_access
from privacy.models import ConsentAction, ConsentSource, DataRequest, Purpose
from privacy.services import record_consent
from salesos.locks import only_one
from tenants.context import require_current_tenant

logger = logging.getLogger(__name__)

Kind = DataRequest.Kind
Status = DataRequest.Status

# The contact fields a rectification may change (registered personal fields of crm.Contact).
RECTIFIABLE_FIELDS = ("name", "phone", "email")
# Kinds that act on a known contact.
CONTACT_KINDS = (
    Kind.RECTIFICATION,
    Kind.RESTRICTION,
    Kind.LIFT_RESTRICTION,
    Kind.CONSENT_WITHDRAWAL,
)


class DataRequestError(ValidationError):
    """Bad input for a request; `field` names the input at fault (for forms and the API)."""

    def __init__(self, message: str, *, code: str, field: str | None = None):
        super().__init__(message, code=code)
        self.field = field
        self.detail = message


class DuplicateRequest(DataRequestError):
    """The same kind of request for the same person is already open (a retried API call, a
    second click): the open one stands."""

    def __init__(self, existing: DataRequest):
        super().__init__(
            _("A request of this kind for this person is already open: #%(id)s.")
            % {"id": existing.pk},
            code="duplicate",
            field="kind",
        )
        self.existing = existing


def _open_duplicate(
    kind: str, phone_hash: str, email_hash: str, contact_ids=()
) -> DataRequest | None:
    condition = Q(contact_id__in=contact_ids) if contact_ids else Q()
    if phone_hash:
        condition |= Q(subject_phone_hash=phone_hash)
    if email_hash:
        condition |= Q(subject_email_hash=email_hash)
    return (
        DataRequest.objects.filter(condition, kind=kind, status__in=DataRequest.OPEN_STATUSES)
        .order_by("pk")
        .first()
    )


def identifier_hash(value: str, *, tenant_id: int) -> str:
    """The salted hash kept as proof once the identifier itself is erased."""
    if not value:
        return ""
    message = f"{tenant_id}:{value.strip().lower()}".encode()
    return hmac.new(settings.SECRET_KEY.encode(), message, hashlib.sha256).hexdigest()


def clean_identifiers(*, phone: str = "", email: str = "") -> tuple[str, str]:
    from crm.phones import normalize_phone

    phone = (phone or "").strip()
    email = (email or "").strip().lower()
    if not phone and not email:
        raise DataRequestError(
            _("Give the person's phone number or e-mail address (or both)."),
            code="no_identifier",
            field="phone",
        )
    if phone:
        try:
            phone = normalize_phone(phone)
        except ValidationError as exc:
            raise DataRequestError(exc.messages[0], code="invalid_phone", field="phone") from exc
    if email:
        try:
            validate_email(email)
        except ValidationError as exc:
            raise DataRequestError(
                _("“%(email)s” is not an e-mail address.") % {"email": email},
                code="invalid_email",
                field="email",
            ) from exc
    return phone, email


def clean_changes(changes, *, contact_id: int | None = None) -> dict:
    """A rectification's new values: only registered contact fields, each valid."""
    from crm.models import Contact
    from crm.phones import normalize_phone

    if not isinstance(changes, dict) or not changes:
        raise DataRequestError(
            _("Say what to correct: a new name, phone number or e-mail address."),
            code="no_changes",
            field="changes",
        )
    cleaned = {}
    for name, value in changes.items():
        if name not in RECTIFIABLE_FIELDS:
            raise DataRequestError(
                _("“%(field)s” cannot be corrected here; use one of: %(fields)s.")
                % {"field": name, "fields": ", ".join(RECTIFIABLE_FIELDS)},
                code="unknown_field",
                field="changes",
            )
        value = str(value if value is not None else "").strip()
        if name == "phone" and value:
            try:
                value = normalize_phone(value)
            except ValidationError as exc:
                raise DataRequestError(
                    exc.messages[0], code="invalid_phone", field="changes"
                ) from exc
            taken = Contact.objects.filter(phone=value)
            if contact_id:
                taken = taken.exclude(pk=contact_id)
            if taken.exists():
                raise DataRequestError(
                    _("Another contact already has this phone number."),
                    code="phone_taken",
                    field="changes",
                )
        if name == "email" and value:
            value = value.lower()
            try:
                validate_email(value)
            except ValidationError as exc:
                raise DataRequestError(
                    _("“%(email)s” is not an e-mail address.") % {"email": value},
                    code="invalid_email",
                    field="changes",
                ) from exc
        if name == "name" and len(value) > 200:
            raise DataRequestError(
                _("The name is longer than 200 characters."), code="too_long", field="changes"
            )
        cleaned[name] = value
    return cleaned


def _subject_of(data_request: DataRequest) -> subjects.Subject:
    return subjects.find_subject(phone=data_request.subject_phone, email=data_request.subject_email)


def _previous_erasure(tenant, phone_hash: str, email_hash: str) -> DataRequest | None:
    condition = Q()
    if phone_hash:
        condition |= Q(subject_phone_hash=phone_hash)
    if email_hash:
        condition |= Q(subject_email_hash=email_hash)
    if not condition:
        return None
    return (
        DataRequest.objects.filter(condition, kind=Kind.ERASURE, status=Status.DONE)
        .order_by("-completed_at")
        .first()
    )


def create_request(
    *,
    kind: str,
    phone: str = "",
    email: str = "",
    source: str = DataRequest.Source.DASHBOARD,
    created_by=None,
    message=None,
    notes: str = "",
    changes=None,
) -> DataRequest:
    """Log a request, give it its due date and record what the registry finds."""
    if kind not in Kind.values:
        raise DataRequestError(
            _("Unknown kind of request “%(kind)s”; use one of: %(kinds)s.")
            % {"kind": kind, "kinds": ", ".join(Kind.values)},
            code="invalid_kind",
            field="kind",
        )
    if message is not None:
        contact = message.conversation.contact
        phone = phone or contact.phone
        email = email or contact.email
    phone, email = clean_identifiers(phone=phone, email=email)
    tenant = require_current_tenant()
    subject = subjects.find_subject(phone=phone, email=email)
    cleaned_changes = {}
    if kind == Kind.RECTIFICATION:
        cleaned_changes = clean_changes(
            changes, contact_id=subject.contact_ids[0] if subject.contact_ids else None
        )
    phone_hash = identifier_hash(phone, tenant_id=tenant.pk)
    email_hash = identifier_hash(email, tenant_id=tenant.pk)
    if kind != Kind.RECTIFICATION:
        duplicate = _open_duplicate(kind, phone_hash, email_hash, subject.contact_ids)
        if duplicate is not None:
            raise DuplicateRequest(duplicate)
    found = subjects.findings(subject)
    if kind == Kind.ERASURE:
        previous = _previous_erasure(tenant, phone_hash, email_hash)
        if previous is not None:
            found["previously_erased_on"] = previous.completed_at.date().isoformat()
            found["previous_request"] = previous.pk
    found["nothing_found"] = found["total"] == 0
    # The deadline runs from when the person asked: the day their message came, not the day
    # an agent turned it into a request.
    received = None
    if message is not None:
        received = timezone.localdate(message.created_at, tenant.zone)
    data_request = DataRequest.objects.create(
        kind=kind,
        status=Status.AWAITING_CONFIRMATION,
        source=source,
        subject_phone=phone,
        subject_email=email,
        subject_phone_hash=phone_hash,
        subject_email_hash=email_hash,
        contact_id=subject.contact_ids[0] if subject.contact_ids else None,
        message=message,
        notes=(notes or "")[:2000],
        changes=cleaned_changes,
        due_date=deadlines.due_date(tenant=tenant, received=received),
        findings=found,
        created_by=created_by,
        created_by_label=getattr(created_by, "email", "") or "",
    )
    return data_request


def _queue(locked: DataRequest) -> None:
    """Hand a request (its row locked, set in progress by the caller) to Celery once the
    transaction commits. A broker that cannot take it is logged: the request stays in
    progress and the sweep (`requeue_stalled`) queues it again."""
    from kombu.exceptions import OperationalError

    from privacy import tasks

    locked.queued_at = timezone.now()
    locked.save(
        update_fields=["status", "confirmed_at", "queued_at", "failure_reason", "completed_at"]
    )
    tenant_id, request_id = locked.tenant_id, locked.pk

    def send():
        try:
            tasks.run_data_request.delay(tenant_id, request_id)
        except OperationalError:
            logger.exception("data request %s could not be queued; the sweep retries", request_id)

    transaction.on_commit(send)


def confirm_request(*, data_request: DataRequest, by=None) -> DataRequest:
    """Hand the request to Celery. Confirming twice does nothing more."""
    with transaction.atomic():
        locked = DataRequest.objects.select_for_update().get(pk=data_request.pk)
        if locked.status not in (Status.RECEIVED, Status.AWAITING_CONFIRMATION):
            return locked
        locked.status = Status.IN_PROGRESS
        locked.confirmed_at = timezone.now()
        _queue(locked)
    return locked


def run_again(*, data_request: DataRequest, by=None) -> DataRequest:
    """Carry out a request that failed, or that is in progress but stalled (its queue message
    or worker was lost), from the start. Each kind is safe to run again: what was done stays
    done, and the rest is finished."""
    with transaction.atomic():
        locked = DataRequest.objects.select_for_update().get(pk=data_request.pk)
        if not locked.can_run_again:
            raise DataRequestError(
                _("Only a request that failed, or stopped moving, can be run again."),
                code="not_failed",
            )
        locked.status = Status.IN_PROGRESS
        locked.failure_reason = ""
        locked.completed_at = None
        locked.confirmed_at = locked.confirmed_at or timezone.now()
        _queue(locked)
    return locked


def requeue_stalled(*, now=None) -> int:
    """Queue again the active business's requests that are in progress but have not finished
    `STALLED_AFTER` after they were queued. A request still running is not run twice: the
    second run waits for the business's lock, then finds it done (`carry_out`)."""
    now = now or timezone.now()
    cutoff = now - DataRequest.STALLED_AFTER
    stalled = DataRequest.objects.filter(status=Status.IN_PROGRESS).filter(
        Q(queued_at__lt=cutoff) | Q(queued_at__isnull=True)
    )
    queued = 0
    for pk in stalled.values_list("pk", flat=True):
        with transaction.atomic():
            locked = DataRequest.objects.select_for_update().get(pk=pk)
            if not locked.is_stalled(now):
                continue
            logger.warning("data request %s stalled in progress; queued again", pk)
            _queue(locked)
            queued += 1
    return queued


def reject_request(*, data_request: DataRequest, reason: str, by=None) -> DataRequest:
    with transaction.atomic():
        locked = DataRequest.objects.select_for_update().get(pk=data_request.pk)
        if locked.status not in (Status.RECEIVED, Status.AWAITING_CONFIRMATION, Status.FAILED):
            raise DataRequestError(
                _("Only a request that has not started, or that failed, can be rejected."),
                code="not_open",
                field="reason",
            )
        reason = (reason or "").strip()
        if not reason:
            raise DataRequestError(
                _("Say why the request is rejected."), code="no_reason", field="reason"
            )
        locked.status = Status.REJECTED
        locked.completed_at = timezone.now()
        locked.result = {"summary": _("Rejected: %(reason)s") % {"reason": reason[:250]}}
        locked.changes = {}
        locked.save(update_fields=["status", "completed_at", "result", "changes"])
    return locked


class Busy(Exception):
    """Another data request of the business is being carried out: try again shortly."""


def carry_out(*, request_id: int) -> DataRequest | None:
    """Do what the request asks (called by the Celery task). A second run of a request that
    is done, rejected or failed does nothing.

    A business's requests are carried out one at a time (`Busy` otherwise; the task tries
    again): an export running beside an erasure of the same person would write back what
    the erasure removed, and a request delivered twice must not run twice at once."""
    tenant = require_current_tenant()
    with only_one(f"privacy.data_requests:{tenant.pk}") as alone:
        if not alone:
            raise Busy(request_id)
        data_request = (
            DataRequest.objects.select_related("contact", "created_by")
            .filter(pk=request_id)
            .first()
        )
        if data_request is None or data_request.status != Status.IN_PROGRESS:
            return data_request
        try:
            handler = HANDLERS[data_request.kind]
            handler(data_request)
        except Exception as exc:
            logger.exception("data request %s failed", request_id)
            DataRequest.objects.filter(pk=request_id, status=Status.IN_PROGRESS).update(
                status=Status.FAILED,
                completed_at=timezone.now(),
                failure_reason=f"{type(exc).__name__}: {exc}"[:300],
            )
            raise
    data_request.refresh_from_db()
    return data_request


def _finish(data_request: DataRequest, *, result: dict, **fields) -> None:
    """Done: only what the run decided is written (with the status, result and time)."""
    data_request.result = result
    data_request.status = Status.DONE
    data_request.completed_at = timezone.now()
    for name, value in fields.items():
        setattr(data_request, name, value)
    data_request.save(update_fields=["result", "status", "completed_at", *fields])


def _nothing_found(data_request: DataRequest) -> None:
    _finish(
        data_request,
        result={
            "nothing_found": True,
            "summary": _("Nothing was found for this person; nothing was changed."),
        },
        changes={},
    )


def _export(data_request: DataRequest) -> None:
    tenant = require_current_tenant()
    subject = _subject_of(data_request)
    if data_request.export_file:  # a re-run after a crash: replace the half-made archive
        data_request.export_file.storage.delete(data_request.export_file.name)
    name, counts = export.build_archive(subject, tenant=tenant, data_request=data_request)
    total = sum(counts.values())
    # The archive lists this request too; "nothing found" means nothing besides it.
    found = total - (1 if counts.get(DataRequest._meta.label) else 0)
    record_access(
        action=Action.EXPORTED_SUBJECT,
        actor=data_request.created_by,
        obj=data_request,
        subject=data_request.contact,
        detail=_("data request #%(id)s: %(rows)s rows") % {"id": data_request.pk, "rows": total},
    )
    _finish(
        data_request,
        result={
            "models": counts,
            "total": total,
            "nothing_found": found == 0,
            "summary": (
                _("The archive holds %(rows)s rows from %(tables)s tables.")
                % {"rows": total, "tables": len(counts)}
                if found
                else _("Nothing was found for this person; the archive says so.")
            ),
        },
        export_file=name,
        export_expires_at=export.expiry_for(tenant),
    )


def _erase(data_request: DataRequest) -> None:
    subject = _subject_of(data_request)
    keep = {DataRequest._meta.label: [data_request.pk]}
    report = erasure.erase_subject(subject, keep=keep)
    # The business's exports of everything hold this person too (whether or not anything of
    # them is left to find): their files go before the verification looks.
    business_exports = tenant_deletion.remove_exports_after_erasure()
    verification = erasure.verify(subject, exclude=keep)
    total = sum(item["rows"] for item in report.values())
    # The record itself is the anonymised proof: identifiers out, their salted hashes stay.
    if data_request.export_file:
        data_request.export_file.storage.delete(data_request.export_file.name)
    summary = (
        _("%(rows)s rows erased or anonymised in %(tables)s tables.")
        % {"rows": total, "tables": len(report)}
        if total
        else _("Nothing was found for this person; nothing was erased.")
    )
    if business_exports:
        summary += " " + ngettext(
            "The export of the whole business was deleted too, as it held every customer.",
            "%(files)s exports of the whole business were deleted too, as they held every "
            "customer.",
            business_exports,
        ) % {"files": business_exports}
    _finish(
        data_request,
        result={
            "models": report,
            "total": total,
            "nothing_found": total == 0,
            "business_exports_removed": business_exports,
            "summary": summary,
        },
        verification=verification,
        subject_phone="",
        subject_email="",
        notes="",
        changes={},
        contact=None,
        message=None,
        export_file="",
    )
    record_access(
        action=Action.ERASED_SUBJECT,
        actor=data_request.created_by,
        obj=data_request,
        detail=_("data request #%(id)s: %(rows)s rows; verification %(result)s")
        % {
            "id": data_request.pk,
            "rows": total,
            "result": _("clean") if verification["clean"] else _("found remaining copies"),
        },
    )


def _contacts(data_request: DataRequest):
    from crm.models import Contact

    subject = _subject_of(data_request)
    return list(Contact.objects.filter(pk__in=subject.contact_ids))


def _restrict(data_request: DataRequest) -> None:
    from crm.models import Contact

    contacts = _contacts(data_request)
    if not contacts:
        return _nothing_found(data_request)
    ids = [c.pk for c in contacts]
    if data_request.kind == Kind.RESTRICTION:
        changed = Contact.objects.filter(pk__in=ids, processing_restricted_at__isnull=True).update(
            processing_restricted_at=timezone.now()
        )
        summary = _("Processing restricted: no bot, campaigns or automations for this person.")
    else:
        changed = Contact.objects.filter(pk__in=ids, processing_restricted_at__isnull=False).update(
            processing_restricted_at=None
        )
        summary = _("The restriction of processing was lifted.")
    _finish(data_request, result={"contacts": len(ids), "changed": changed, "summary": summary})


def _rectify(data_request: DataRequest) -> None:
    contacts = _contacts(data_request)
    if not contacts:
        return _nothing_found(data_request)
    contact = contacts[0]
    changes = clean_changes(data_request.changes, contact_id=contact.pk)
    changed = [name for name, value in changes.items() if getattr(contact, name) != value]
    for name in changed:
        setattr(contact, name, changes[name])
    if changed:
        contact.save(update_fields=[*changed, "updated_at"])
    record_access(
        action=Action.RECTIFIED,
        actor=data_request.created_by,
        obj=contact,
        detail=_("data request #%(id)s: %(fields)s")
        % {"id": data_request.pk, "fields": ", ".join(changed) or "-"},
    )
    # Field names only: the old and new values stay out of the record.
    _finish(
        data_request,
        result={
            "changed_fields": changed,
            "unchanged_fields": [name for name in changes if name not in changed],
            "summary": (
                _("Corrected: %(fields)s.") % {"fields": ", ".join(changed)}
                if changed
                else _("The contact already had these values; nothing changed.")
            ),
        },
        changes={},
        # The subject may now be known by the new phone or e-mail.
        subject_phone=contact.phone,
        subject_email=contact.email,
    )


def _withdraw_consent(data_request: DataRequest) -> None:
    from channels_app.models import Medium

    contacts = _contacts(data_request)
    if not contacts:
        return _nothing_found(data_request)
    events = 0
    for contact in contacts:
        events += len(
            record_consent(
                contact=contact,
                media=[m.value for m in Medium],
                purposes=[Purpose.TRANSACTIONAL, Purpose.MARKETING],
                action=ConsentAction.WITHDRAWN,
                source=ConsentSource.DATA_REQUEST,
                evidence=f"Data request #{data_request.pk}",
                recorded_by=data_request.created_by,
            )
        )
    _finish(
        data_request,
        result={
            "events": events,
            "summary": _("Consent withdrawn for every channel and purpose."),
        },
    )


HANDLERS = {
    Kind.ACCESS: _export,
    Kind.EXPORT: _export,
    Kind.ERASURE: _erase,
    Kind.RESTRICTION: _restrict,
    Kind.LIFT_RESTRICTION: _restrict,
    Kind.RECTIFICATION: _rectify,
    Kind.CONSENT_WITHDRAWAL: _withdraw_consent,
}


# --- Reads -----------------------------------------------------------------------------------


def open_requests():
    return DataRequest.objects.filter(status__in=DataRequest.OPEN_STATUSES)


def overdue_requests(*, tenant):
    return open_requests().filter(due_date__lt=deadlines.today_for(tenant))


def summary(*, tenant) -> dict:
    open_qs = open_requests()
    next_due = open_qs.order_by("due_date").values_list("due_date", flat=True).first()
    return {
        "open": open_qs.count(),
        "overdue": overdue_requests(tenant=tenant).count(),
        "next_due": next_due,
    }


# --- Expiry and reminders ----------------------------------------------------------------------


def expire_exports(*, now=None) -> int:
    """Delete the active business's archives whose link has expired. Safe to run twice."""
    now = now or timezone.now()
    expired = DataRequest.objects.exclude(export_file="").filter(export_expires_at__lte=now)
    removed = 0
    for data_request in expired:
        data_request.export_file.storage.delete(data_request.export_file.name)
        DataRequest.objects.filter(pk=data_request.pk).update(export_file="")
        removed += 1
    return removed


def notify_overdue(*, tenant) -> int:
    """E-mail the owners once per overdue request (remembered on the request)."""
    from tenants.models import Membership, Role

    owners = list(
        Membership.objects.filter(tenant=tenant, role=Role.OWNER, user__is_active=True)
        .values_list("user__email", flat=True)
        .order_by("user__email")
    )
    sent = 0
    for data_request in overdue_requests(tenant=tenant).filter(overdue_notified_at__isnull=True):
        with transaction.atomic():
            claimed = DataRequest.objects.filter(
                pk=data_request.pk, overdue_notified_at__isnull=True
            ).update(overdue_notified_at=timezone.now())
            if not claimed or not owners:
                continue
            context = {
                "tenant": tenant,
                "data_request": data_request,
                "url": f"{settings.PUBLIC_BASE_URL}/app/{tenant.slug}/privacy/requests/"
                f"{data_request.pk}/",
            }
            send_mail(
                subject=_("[%(business)s] Data request #%(id)s is overdue")
                % {"business": tenant.name, "id": data_request.pk},
                message=render_to_string("privacy/requests/overdue_email.txt", context),
                from_email=None,
                recipient_list=owners,
            )
            sent += 1
    return sent
