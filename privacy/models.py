"""Consent: an append-only ledger of events and the state derived from it (DESIGN §6)."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from channels_app.models import Medium
from tenants.models import TenantOwned


class Purpose(models.TextChoices):
    TRANSACTIONAL = "transactional", _("Transactional (replies, reminders, service)")
    MARKETING = "marketing", _("Marketing (offers, campaigns)")


class ConsentAction(models.TextChoices):
    GRANTED = "granted", _("granted")
    WITHDRAWN = "withdrawn", _("withdrawn")


class ConsentSource(models.TextChoices):
    KEYWORD = "keyword", _("customer sent a keyword")
    AGENT = "agent", _("recorded by the team")
    IMPORT = "import", _("attested at import")
    LEAD_FORM = "lead_form", _("lead form")
    PROVIDER = "provider", _("reported by the provider")
    API = "api", _("API")
    DATA_REQUEST = "data_request", _("data subject request")


class ConsentEvent(TenantOwned):
    """One grant or withdrawal. Never updated, never deleted (erasure anonymises it as proof)."""

    # Empty once the person was erased: the event stays as proof, without the link to them.
    contact = models.ForeignKey(
        "crm.Contact",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="consent_events",
    )
    medium = models.CharField(max_length=16, choices=Medium.choices)
    purpose = models.CharField(max_length=16, choices=Purpose.choices)
    action = models.CharField(max_length=16, choices=ConsentAction.choices)
    source = models.CharField(max_length=16, choices=ConsentSource.choices)
    # What proves it: the keyword message, the import, the form, the provider's error.
    evidence = models.TextField(blank=True)
    channel = models.ForeignKey(
        "channels_app.Channel", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    message = models.ForeignKey(
        "channels_app.Message", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [
            models.Index(fields=["tenant", "contact", "created_at"], name="consent_event_contact")
        ]

    def __str__(self):
        return f"{self.contact_id} {self.medium}/{self.purpose} {self.action} ({self.source})"

    def save(self, *args, **kwargs):
        if self.pk is not None and not kwargs.pop("_anonymising", False):
            raise ValidationError(_("Consent events are append-only; record a new event."))
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValidationError(_("Consent events are append-only and cannot be deleted."))


class ConsentState(TenantOwned):
    """The current consent per contact, medium and purpose, derived from the ledger for the gate."""

    contact = models.ForeignKey(
        "crm.Contact", on_delete=models.CASCADE, related_name="consent_states"
    )
    medium = models.CharField(max_length=16, choices=Medium.choices)
    purpose = models.CharField(max_length=16, choices=Purpose.choices)
    action = models.CharField(max_length=16, choices=ConsentAction.choices)
    source = models.CharField(max_length=16, choices=ConsentSource.choices)
    last_event = models.ForeignKey(ConsentEvent, on_delete=models.PROTECT, related_name="+")
    changed_at = models.DateTimeField()

    class Meta:
        ordering = ["medium", "purpose"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "contact", "medium", "purpose"], name="consent_state_unique"
            )
        ]

    @property
    def granted(self) -> bool:
        return self.action == ConsentAction.GRANTED


class MessagingPolicy(TenantOwned):
    """A business's opt-out wording: extra keywords in its languages and the automatic replies."""

    extra_opt_out_keywords = models.TextField(
        _("extra opt-out keywords"),
        blank=True,
        help_text=_("One per line or comma-separated, in your customers' languages."),
    )
    extra_opt_in_keywords = models.TextField(_("extra opt-in keywords"), blank=True)
    extra_help_keywords = models.TextField(_("extra help keywords"), blank=True)
    opt_out_reply = models.TextField(
        _("reply to an opt-out"),
        blank=True,
        help_text=_("Empty: a standard confirmation in the business's language."),
    )
    opt_in_reply = models.TextField(_("reply to an opt-in"), blank=True)
    help_reply = models.TextField(
        _("reply to HELP"),
        blank=True,
        help_text=_("Who you are and how to reach a person; empty: a standard text."),
    )

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant"], name="messaging_policy_one")]


class AccessLogEntry(TenantOwned):
    """Who looked at, exported or erased personal data, when and from where (P12).

    Written only through `privacy.access_log.record_access`; never edited. Subject to the
    business's access-log retention.
    """

    class Action(models.TextChoices):
        VIEWED_CONTACT = "viewed_contact", _("viewed a contact")
        VIEWED_CONVERSATION = "viewed_conversation", _("viewed a conversation")
        VIEWED_DATA_REQUEST = "viewed_data_request", _("viewed a data request")
        EXPORTED_CONTACTS = "exported_contacts", _("exported contacts")
        EXPORTED_SUBJECT = "exported_subject", _("exported a person's data")
        DOWNLOADED_EXPORT = "downloaded_export", _("downloaded a data export")
        ERASED_SUBJECT = "erased_subject", _("erased a person's data")
        RECTIFIED = "rectified", _("corrected a person's data")
        IMPORTED_CONTACTS = "imported_contacts", _("imported contacts")
        EXPORTED_ACCESS_LOG = "exported_access_log", _("exported the access log")
        EXPORTED_BUSINESS = "exported_business", _("exported the whole business")

    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    # The actor's e-mail when it happened, kept if the account goes.
    actor_label = models.CharField(max_length=254, blank=True)
    action = models.CharField(max_length=32, choices=Action.choices)
    # What was touched: "crm.Contact:42", "channels_app.Conversation:7", or a count for exports.
    object_type = models.CharField(max_length=64, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    # The person whose data it was, while they exist (erasure unlinks it).
    subject = models.ForeignKey(
        "crm.Contact", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    detail = models.CharField(max_length=300, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=False)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["tenant", "created_at", "id"], name="access_log_time"),
            models.Index(fields=["tenant", "subject"], name="access_log_subject"),
        ]


class DataRequest(TenantOwned):
    """A data subject's request (P6, P7): what was asked, for whom, what was found, what was
    done and how the result was checked. Written only through `privacy.dsr`.

    Once an erasure is done the subject's phone and e-mail are blanked here too; the salted
    hashes stay, so the record proves the request was carried out without naming the person.
    """

    class Kind(models.TextChoices):
        ACCESS = "access", _("access (a copy of their data)")
        EXPORT = "export", _("export (machine-readable archive)")
        RECTIFICATION = "rectification", _("rectification (correct their data)")
        ERASURE = "erasure", _("erasure (delete their data)")
        RESTRICTION = "restriction", _("restriction of processing")
        LIFT_RESTRICTION = "lift_restriction", _("lift a restriction of processing")
        CONSENT_WITHDRAWAL = "consent_withdrawal", _("consent withdrawal")

    class Status(models.TextChoices):
        RECEIVED = "received", _("received")
        AWAITING_CONFIRMATION = "awaiting_confirmation", _("found, awaiting confirmation")
        IN_PROGRESS = "in_progress", _("in progress")
        DONE = "done", _("done")
        REJECTED = "rejected", _("rejected")
        FAILED = "failed", _("failed")

    # A failed request is still owed to the person: it stays open (listed, counted overdue,
    # blocking a duplicate) until it is run again and done, or rejected.
    OPEN_STATUSES = (
        Status.RECEIVED,
        Status.AWAITING_CONFIRMATION,
        Status.IN_PROGRESS,
        Status.FAILED,
    )
    # In progress but not finished this long after it was queued: its queue message or its
    # worker was lost, and the sweep (`privacy.dsr.requeue_stalled`) queues it again.
    STALLED_AFTER = timedelta(minutes=15)

    class Source(models.TextChoices):
        DASHBOARD = "dashboard", _("dashboard")
        API = "api", _("API")
        MESSAGE = "message", _("customer's message")

    kind = models.CharField(_("kind"), max_length=24, choices=Kind.choices)
    status = models.CharField(max_length=24, choices=Status.choices, default=Status.RECEIVED)
    source = models.CharField(max_length=16, choices=Source.choices, default=Source.DASHBOARD)
    subject_phone = models.CharField(_("phone"), max_length=20, blank=True)
    subject_email = models.EmailField(_("e-mail"), blank=True)
    # HMAC-SHA-256 of the identifiers (keyed by the platform secret and the business): the
    # anonymised proof that remains after erasure, and how a second erasure is recognised.
    subject_phone_hash = models.CharField(max_length=64, blank=True, editable=False)
    subject_email_hash = models.CharField(max_length=64, blank=True, editable=False)
    contact = models.ForeignKey(
        "crm.Contact",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="data_requests",
    )
    # The customer's message the request came from, when it came from one.
    message = models.ForeignKey(
        "channels_app.Message",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    notes = models.TextField(_("notes"), blank=True)
    # Rectification: {field: new value} until it is applied (then emptied).
    changes = models.JSONField(default=dict, blank=True)
    due_date = models.DateField(_("due"))
    # {"models": {"crm.Contact": 1, ...}, "total": n}: what the registry found before acting.
    findings = models.JSONField(default=dict, blank=True)
    # What was done, per model and in words; never the subject's identifiers.
    result = models.JSONField(default=dict, blank=True)
    # Erasure: the post-erasure search of every registered field ({"clean": bool, "hits": {}}).
    verification = models.JSONField(default=dict, blank=True)
    failure_reason = models.CharField(max_length=300, blank=True)
    export_file = models.FileField(upload_to="exports/", max_length=300, blank=True)
    export_expires_at = models.DateTimeField(null=True, blank=True)
    overdue_notified_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_by_label = models.CharField(max_length=254, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    # When it was last handed to Celery (confirmed, run again, or queued again after a stall).
    queued_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["tenant", "status", "due_date"], name="data_request_open"),
            models.Index(fields=["tenant", "subject_phone_hash"], name="data_request_phone"),
            models.Index(fields=["tenant", "subject_email_hash"], name="data_request_email"),
        ]

    def __str__(self):
        return f"#{self.pk} {self.kind} ({self.status})"

    @property
    def is_open(self) -> bool:
        return self.status in self.OPEN_STATUSES

    def is_overdue(self, today=None) -> bool:
        if not self.is_open:
            return False
        if today is None:
            today = timezone.localdate(timezone.now(), self.tenant.zone)
        return today > self.due_date

    def is_stalled(self, now=None) -> bool:
        if self.status != self.Status.IN_PROGRESS:
            return False
        queued = self.queued_at or self.confirmed_at
        return queued is None or (now or timezone.now()) - queued >= self.STALLED_AFTER

    @property
    def can_run_again(self) -> bool:
        return self.status == self.Status.FAILED or self.is_stalled()

    @property
    def makes_archive(self) -> bool:
        return self.kind in (self.Kind.ACCESS, self.Kind.EXPORT)

    def export_available(self, now=None) -> bool:
        return bool(
            self.export_file
            and self.export_expires_at
            and (now or timezone.now()) < self.export_expires_at
        )


class BusinessExport(TenantOwned):
    """An owner's export of every record of the business (before asking for its deletion, or
    during the grace period): a zip built by Celery, downloadable until `expires_at`.

    Written only through `privacy.tenant_deletion`. At most one export of a business is queued
    or running at a time; a new ready export replaces the previous one's file. The file is
    deleted when its link expires, or earlier when a customer's erasure is carried out (each
    export holds every customer); the record of who asked stays until the business goes.
    """

    class RemovedBecause(models.TextChoices):
        ERASURE = "erasure", _("removed after a customer's erasure request; prepare a new export")

    class Status(models.TextChoices):
        QUEUED = "queued", _("queued")
        RUNNING = "running", _("being prepared")
        READY = "ready", _("ready")
        FAILED = "failed", _("failed")

    IN_PROGRESS = (Status.QUEUED, Status.RUNNING)
    # An export queued or being written that has not moved for this long is taken as lost: its
    # queue message vanished (a broker restarted without it) or its worker died and the message
    # never came back. The next click on "Prepare" queues it again. A run that is writing notes
    # its progress far more often than this (`tenant_deletion.PROGRESS_EVERY`), so a large
    # business is not taken for a lost one.
    STALLED_AFTER = timedelta(minutes=10)

    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # The owner's e-mail when they asked, kept if the account goes.
    requested_by_label = models.CharField(max_length=254, blank=True)
    requested_at = models.DateTimeField(default=timezone.now, editable=False)
    started_at = models.DateTimeField(null=True, blank=True)
    # When the export last moved: queued again, started, or written a little further.
    progress_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    rows = models.PositiveBigIntegerField(default=0)
    size = models.PositiveBigIntegerField(default=0)
    # Named before the archive is written, so a run that dies leaves no file nobody knows of.
    file = models.FileField(upload_to="exports/", max_length=300, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    failure_reason = models.CharField(max_length=300, blank=True)
    # Why the file went before its link expired (the deletion page says it); empty when it
    # expired or a newer export replaced it.
    removed_because = models.CharField(max_length=16, choices=RemovedBecause.choices, blank=True)

    class Meta:
        ordering = ["-requested_at", "-id"]
        indexes = [models.Index(fields=["tenant", "requested_at"], name="business_export_time")]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant"],
                condition=models.Q(status__in=["queued", "running"]),
                name="business_export_one_in_progress",
            )
        ]

    def __str__(self):
        return f"business export #{self.pk} ({self.status})"

    @property
    def in_progress(self) -> bool:
        return self.status in self.IN_PROGRESS

    @property
    def last_moved_at(self):
        return self.progress_at or self.started_at or self.requested_at

    def is_stalled(self, now=None) -> bool:
        """Queued or being written, but not moved for STALLED_AFTER: taken as lost."""
        if not self.in_progress:
            return False
        return (now or timezone.now()) - self.last_moved_at >= self.STALLED_AFTER

    @property
    def stalled(self) -> bool:
        return self.is_stalled()

    def is_available(self, now=None) -> bool:
        return bool(
            self.status == self.Status.READY
            and self.file
            and self.expires_at
            and (now or timezone.now()) < self.expires_at
        )

    @property
    def has_expired(self) -> bool:
        return self.status == self.Status.READY and not self.is_available()


class PurgeReport(TenantOwned):
    """One retention purge (or dry run) of one business: what it removed, per category and model.

    `counts` is {category: {model label: rows}}. A run that stopped before finishing (its batch
    budget ran out, or the worker died) is not complete; the next run carries on where it ended.
    """

    class Status(models.TextChoices):
        RUNNING = "running", _("running")
        COMPLETE = "complete", _("complete")
        INCOMPLETE = "incomplete", _("stopped early; the next run continues")
        INTERRUPTED = "interrupted", _("interrupted; the next run continued")

    dry_run = models.BooleanField(default=False)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RUNNING)
    counts = models.JSONField(default=dict, blank=True)
    # The policies the run applied, in days per category (0 = keep).
    policies = models.JSONField(default=dict, blank=True)
    batches = models.PositiveIntegerField(default=0)
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        indexes = [models.Index(fields=["tenant", "started_at"], name="purge_report_time")]

    def __str__(self):
        return f"purge {self.started_at:%Y-%m-%d %H:%M} ({self.status})"

    @property
    def total(self) -> int:
        return sum(n for models_ in self.counts.values() for n in models_.values())

    def category_totals(self) -> dict[str, int]:
        return {category: sum(rows.values()) for category, rows in self.counts.items()}


class SecurityEvent(TenantOwned):
    """Something a business must be able to look back on when judging a breach (P17).

    Repeats of the same kind from the same address within a few minutes are one event with a
    count, so a burst of forged webhooks is one line, not ten thousand.
    """

    class Kind(models.TextChoices):
        FORGED_WEBHOOK = "forged_webhook", _("webhook with a bad signature")
        MALFORMED_WEBHOOK = "malformed_webhook", _("malformed webhook")
        FAILED_LOGIN_BURST = "failed_login_burst", _("repeated failed logins")
        MASS_EXPORT = "mass_export", _("large export of personal data")
        DELETION_REQUESTED = "deletion_requested", _("business deletion requested")
        DELETION_CANCELLED = "deletion_cancelled", _("business deletion cancelled")

    kind = models.CharField(max_length=32, choices=Kind.choices)
    detail = models.CharField(max_length=300, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    # The team member concerned (whose login failed, who exported), if any.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    channel = models.ForeignKey(
        "channels_app.Channel", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    count = models.PositiveIntegerField(default=1)
    first_seen_at = models.DateTimeField(default=timezone.now)
    last_seen_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-last_seen_at", "-id"]
        indexes = [
            models.Index(fields=["tenant", "last_seen_at", "id"], name="security_event_time"),
            models.Index(fields=["tenant", "kind", "last_seen_at"], name="security_event_kind"),
        ]

    def __str__(self):
        return f"{self.kind} ×{self.count}"


# Personal-data breaches are notified to the authority within 72 hours of detection (P17).
NOTIFICATION_DEADLINE = timedelta(hours=72)


class Incident(TenantOwned):
    """A suspected or confirmed personal-data breach and its 72-hour notification clock."""

    class Status(models.TextChoices):
        OPEN = "open", _("open")
        NOTIFIED = "notified", _("notified")
        CLOSED = "closed", _("closed")

    title = models.CharField(_("title"), max_length=200)
    description = models.TextField(_("what happened"), blank=True)
    detected_at = models.DateTimeField(_("detected at"))
    notify_by = models.DateTimeField(_("notify by"))
    notified_at = models.DateTimeField(_("notified at"), null=True, blank=True)
    notified_whom = models.CharField(_("who was notified"), max_length=300, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    notes = models.TextField(_("notes"), blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["-detected_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(notify_by__gt=models.F("detected_at")),
                name="incident_notify_after_detection",
            )
        ]

    def __str__(self):
        return self.title

    def time_left(self, now=None) -> timedelta:
        """Until the notification deadline; negative once it has passed."""
        return self.notify_by - (now or timezone.now())

    def is_overdue(self, now=None) -> bool:
        return self.notified_at is None and self.time_left(now) <= timedelta(0)
