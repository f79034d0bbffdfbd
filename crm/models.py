"""CRM records. Contacts are the people a business talks to; the messaging pipeline creates
them from inbound messages (by E.164 phone), the CRM extends them."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.core.validators import MaxValueValidator
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from salesos.encryption import EncryptedTextField
from tenants.models import TenantOwned

# ---------------------------------------------------------------------------------------------
# Companies, tags, custom attributes
# ---------------------------------------------------------------------------------------------


class Company(TenantOwned):
    name = models.CharField(_("name"), max_length=200)
    domain = models.CharField(_("website domain"), max_length=200, blank=True)
    phone = models.CharField(_("phone"), max_length=20, blank=True)
    address = models.TextField(_("address"), blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("owner"),
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]
        verbose_name_plural = _("companies")
        indexes = [models.Index(fields=["tenant", "name"], name="company_tenant_name")]

    def __str__(self):
        return self.name


class Tag(TenantOwned):
    name = models.CharField(_("name"), max_length=50)
    color = models.CharField(_("colour"), max_length=7, default="#64748b")

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "name"], name="tag_name_unique_per_tenant")
        ]

    def __str__(self):
        return self.name


class ContactAttribute(TenantOwned):
    """A custom field a business defines for its contacts; values live in
    `Contact.attributes[key]` (text as str, number as str of a Decimal, date as ISO date,
    choice as one of `choices`)."""

    class Kind(models.TextChoices):
        TEXT = "text", _("text")
        NUMBER = "number", _("number")
        DATE = "date", _("date")
        CHOICE = "choice", _("choice")

    key = models.SlugField(_("key"), max_length=50)
    label = models.CharField(_("label"), max_length=100)
    kind = models.CharField(_("type"), max_length=8, choices=Kind.choices, default=Kind.TEXT)
    choices = models.JSONField(_("choices"), default=list, blank=True)
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["position", "label"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "key"], name="contact_attribute_key_unique_per_tenant"
            )
        ]

    def __str__(self):
        return self.label


class BinaryCharField(models.CharField):
    """Text compared code point by code point (PostgreSQL collation "C"; SQLite's default), so
    a range `>= "ana"` and `< "ana" + max char` is exactly "starts with ana"."""

    def db_parameters(self, connection):
        params = super().db_parameters(connection)
        if connection.vendor == "postgresql":
            params["collation"] = "C"
        return params


class LastWord(models.Func):
    """The last space-separated word of a text ("ana de souza" -> "souza")."""

    function = ""
    arity = 1
    output_field = models.CharField()

    def as_postgresql(self, compiler, connection, **extra):
        return self.as_sql(
            compiler, connection, template="regexp_replace(%(expressions)s, '^.*\\s', '')", **extra
        )

    def as_sqlite(self, compiler, connection, **extra):
        # SQLite has no regexp_replace: strip everything up to the last space.
        sql, params = compiler.compile(self.source_expressions[0])
        template = f"replace({sql}, rtrim({sql}, replace({sql}, ' ', '')), '')"
        return template, params * 3


class LifecycleStage(models.TextChoices):
    SUBSCRIBER = "subscriber", _("subscriber")
    LEAD = "lead", _("lead")
    QUALIFIED = "qualified", _("qualified lead")
    OPPORTUNITY = "opportunity", _("opportunity")
    CUSTOMER = "customer", _("customer")
    CHURNED = "churned", _("former customer")
    OTHER = "other", _("other")


class Contact(TenantOwned):
    class Source(models.TextChoices):
        INBOUND = "inbound", _("wrote to the business")
        MANUAL = "manual", _("added by the team")
        IMPORT = "import", _("imported")
        LEAD_FORM = "lead_form", _("lead form")
        API = "api", _("API")
        SANDBOX = "sandbox", _("sandbox simulator")

    name = models.CharField(_("name"), max_length=200, blank=True)
    # E.164 ("+14155550123"); unique per business when present.
    phone = models.CharField(_("phone"), max_length=20, blank=True)
    email = models.EmailField(_("e-mail"), blank=True)
    language = models.CharField(_("language"), max_length=8, blank=True, choices=settings.LANGUAGES)
    source = models.CharField(
        _("source"), max_length=16, choices=Source.choices, default=Source.MANUAL
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("owner"),
    )
    company = models.ForeignKey(
        Company,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="contacts",
        verbose_name=_("company"),
    )
    lifecycle_stage = models.CharField(
        _("lifecycle stage"),
        max_length=16,
        choices=LifecycleStage.choices,
        default=LifecycleStage.LEAD,
    )
    tags = models.ManyToManyField(
        Tag, through="ContactTag", blank=True, related_name="contacts", verbose_name=_("tags")
    )
    # Values of the business's `ContactAttribute`s, keyed by attribute key.
    attributes = models.JSONField(_("custom attributes"), default=dict, blank=True)
    # Restriction of processing (a data subject's right): set, the bot, campaigns and
    # automations leave this contact alone; the data is kept. Set only through privacy services.
    processing_restricted_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)
    # The latest thing that happened with this contact (a message, a note, a task, a deal),
    # kept here so the list can sort on it with an index.
    last_activity_at = models.DateTimeField(_("last activity"), default=timezone.now)
    # Search keys the database derives (every write path, imports included, keeps them right).
    # Search compares them by range (`>=`, `<`), which row-level security lets use an index;
    # LIKE and lower() are not "leakproof", so under RLS they would scan the whole table.
    search_name = models.GeneratedField(
        expression=Lower("name"),
        output_field=BinaryCharField(max_length=200),
        db_persist=True,
    )
    search_last_word = models.GeneratedField(
        expression=LastWord(Lower("name")),
        output_field=BinaryCharField(max_length=200),
        db_persist=True,
    )
    search_email = models.GeneratedField(
        expression=Lower("email"),
        output_field=BinaryCharField(max_length=254),
        db_persist=True,
    )

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "phone"],
                condition=~models.Q(phone=""),
                name="contact_phone_unique_per_tenant",
            )
        ]
        indexes = [
            models.Index(fields=["tenant", "name", "id"], name="contact_tenant_name_id"),
            models.Index(fields=["tenant", "email"], name="contact_tenant_email"),
            models.Index(fields=["tenant", "created_at", "id"], name="contact_tenant_created"),
            models.Index(fields=["tenant", "updated_at", "id"], name="contact_tenant_updated"),
            models.Index(
                fields=["tenant", "last_activity_at", "id"], name="contact_tenant_activity"
            ),
            models.Index(fields=["tenant", "search_name"], name="contact_search_name"),
            models.Index(fields=["tenant", "search_last_word"], name="contact_search_last"),
            models.Index(fields=["tenant", "search_email"], name="contact_search_email"),
            # A stage or owner filter in name order reads these in order, from the first match.
            models.Index(
                fields=["tenant", "owner", "name", "id"], name="contact_tenant_owner_name"
            ),
            models.Index(
                fields=["tenant", "lifecycle_stage", "name", "id"], name="contact_tenant_stage_name"
            ),
        ]

    def __str__(self):
        return self.display_name

    @property
    def display_name(self) -> str:
        return self.name or self.phone or self.email or _("Unknown contact")

    @property
    def is_processing_restricted(self) -> bool:
        return self.processing_restricted_at is not None


class ContactTag(TenantOwned):
    """A tag on a contact (an explicit through table so the row carries its tenant)."""

    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="contact_tags")
    tag = models.ForeignKey(Tag, on_delete=models.CASCADE, related_name="contact_tags")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["contact", "tag"], name="contact_tag_once")]
        indexes = [models.Index(fields=["tenant", "tag", "contact"], name="contact_tag_by_tag")]


class Segment(TenantOwned):
    """A saved contact filter, reused by the contact list and (later) campaigns. `filters` holds
    the contact list's query parameters (`crm.selectors.ContactFilter` reads them)."""

    name = models.CharField(_("name"), max_length=100)
    filters = models.JSONField(_("filters"), default=dict)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "name"], name="segment_name_unique_per_tenant"
            )
        ]

    def __str__(self):
        return self.name


# ---------------------------------------------------------------------------------------------
# Pipelines and deals
# ---------------------------------------------------------------------------------------------


class Pipeline(TenantOwned):
    name = models.CharField(_("name"), max_length=100)
    position = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["position", "id"]

    def __str__(self):
        return self.name


class Stage(TenantOwned):
    pipeline = models.ForeignKey(Pipeline, on_delete=models.CASCADE, related_name="stages")
    name = models.CharField(_("name"), max_length=100)
    position = models.PositiveIntegerField(default=0)
    is_won = models.BooleanField(_("won"), default=False)
    is_lost = models.BooleanField(_("lost"), default=False)

    class Meta:
        ordering = ["pipeline", "position", "id"]
        constraints = [
            models.CheckConstraint(
                condition=~(models.Q(is_won=True) & models.Q(is_lost=True)),
                name="stage_not_won_and_lost",
            )
        ]

    def __str__(self):
        return self.name

    @property
    def is_closed(self) -> bool:
        return self.is_won or self.is_lost


class Deal(TenantOwned):
    title = models.CharField(_("title"), max_length=200)
    pipeline = models.ForeignKey(Pipeline, on_delete=models.CASCADE, related_name="deals")
    # Always a stage of `pipeline` (checked by `clean()` and `crm.services.deals`).
    stage = models.ForeignKey(Stage, on_delete=models.PROTECT, related_name="deals")
    value = models.DecimalField(_("value"), max_digits=14, decimal_places=2, default=0)
    currency = models.CharField(_("currency"), max_length=3, default="USD")
    contact = models.ForeignKey(
        Contact, on_delete=models.SET_NULL, null=True, blank=True, related_name="deals"
    )
    company = models.ForeignKey(
        Company, on_delete=models.SET_NULL, null=True, blank=True, related_name="deals"
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("owner"),
    )
    expected_close_date = models.DateField(_("expected close"), null=True, blank=True)
    # Order of the card within its stage column (lower first).
    position = models.IntegerField(default=0)
    closed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["position", "id"]
        indexes = [models.Index(fields=["tenant", "stage", "position"], name="deal_stage_order")]

    def __str__(self):
        return self.title

    def clean(self):
        from django.core.exceptions import ValidationError

        if self.stage_id and self.pipeline_id and self.stage.pipeline_id != self.pipeline_id:
            raise ValidationError({"stage": _("This stage belongs to another pipeline.")})


class DealStageChange(TenantOwned):
    """History of a deal's stages, one row per move (the first row is its creation)."""

    deal = models.ForeignKey(Deal, on_delete=models.CASCADE, related_name="stage_changes")
    from_stage = models.ForeignKey(
        Stage, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    to_stage = models.ForeignKey(Stage, on_delete=models.SET_NULL, null=True, related_name="+")
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    changed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["changed_at", "id"]


# ---------------------------------------------------------------------------------------------
# Tasks and notes
# ---------------------------------------------------------------------------------------------


class Task(TenantOwned):
    title = models.CharField(_("title"), max_length=200)
    description = models.TextField(_("description"), blank=True)
    due_at = models.DateTimeField(_("due"), null=True, blank=True)
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("assignee"),
    )
    contact = models.ForeignKey(
        Contact, on_delete=models.CASCADE, null=True, blank=True, related_name="tasks"
    )
    deal = models.ForeignKey(
        Deal, on_delete=models.CASCADE, null=True, blank=True, related_name="tasks"
    )
    completed_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["completed_at", "due_at", "id"]
        indexes = [models.Index(fields=["tenant", "assignee", "due_at"], name="task_assignee_due")]

    def __str__(self):
        return self.title

    @property
    def is_done(self) -> bool:
        return self.completed_at is not None

    @property
    def is_overdue(self) -> bool:
        return not self.is_done and self.due_at is not None and self.due_at < timezone.now()


class Note(TenantOwned):
    """A team note on a contact, a company or a deal (never sent to the customer)."""

    body = models.TextField(_("note"))
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    contact = models.ForeignKey(
        Contact, on_delete=models.CASCADE, null=True, blank=True, related_name="notes"
    )
    company = models.ForeignKey(
        Company, on_delete=models.CASCADE, null=True, blank=True, related_name="notes"
    )
    deal = models.ForeignKey(
        Deal, on_delete=models.CASCADE, null=True, blank=True, related_name="notes"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    edited_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]


# ---------------------------------------------------------------------------------------------
# Appointments
# ---------------------------------------------------------------------------------------------


class Appointment(TenantOwned):
    class Status(models.TextChoices):
        BOOKED = "booked", _("booked")
        CONFIRMED = "confirmed", _("confirmed")
        CANCELLED = "cancelled", _("cancelled")
        NO_SHOW = "no_show", _("no-show")

    title = models.CharField(_("title"), max_length=200)
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="appointments")
    # Stored in UTC; entered and shown in the business's time zone.
    starts_at = models.DateTimeField(_("starts"))
    ends_at = models.DateTimeField(_("ends"))
    location = models.CharField(_("location"), max_length=300, blank=True)
    link = models.URLField(_("meeting link"), blank=True)
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.BOOKED
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("with"),
    )
    notes = models.TextField(_("notes"), blank=True)
    # Reminder by message: how long before the start; 0 = no reminder.
    reminder_minutes_before = models.PositiveIntegerField(
        _("reminder (minutes before)"),
        default=24 * 60,
        validators=[MaxValueValidator(60 * 24 * 30)],
    )
    # The channel the reminder goes out on (the contact's latest conversation's when empty).
    reminder_channel = models.ForeignKey(
        "channels_app.Channel", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    reminder_sent_at = models.DateTimeField(null=True, blank=True, editable=False)
    reminder_message = models.ForeignKey(
        "channels_app.Message", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # Why no reminder left (the gate's reason), shown on the appointment.
    reminder_skipped_reason = models.CharField(max_length=200, blank=True, editable=False)
    # The customer's answer to the reminder (YES / NO), as they wrote it, and when.
    customer_reply = models.CharField(max_length=200, blank=True, editable=False)
    customer_replied_at = models.DateTimeField(null=True, blank=True, editable=False)
    customer_reply_message = models.ForeignKey(
        "channels_app.Message", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["starts_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(ends_at__gt=models.F("starts_at")),
                name="appointment_ends_after_it_starts",
            )
        ]
        indexes = [models.Index(fields=["tenant", "starts_at"], name="appointment_tenant_start")]

    def __str__(self):
        return self.title


def new_feed_token() -> str:
    return secrets.token_urlsafe(32)


class CalendarFeed(TenantOwned):
    """A member's private `.ics` feed address of their appointments (revocable token)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    token = models.CharField(max_length=64, unique=True, default=new_feed_token)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "user"], name="calendar_feed_one_per_user")
        ]


# ---------------------------------------------------------------------------------------------
# CSV import
# ---------------------------------------------------------------------------------------------


class ConsentAttestation(models.TextChoices):
    NONE = "none", _("no consent: do not message them until they agree")
    TRANSACTIONAL = "transactional", _("service messages (transactional)")
    MARKETING = "marketing", _("service and marketing messages")


class ContactImport(TenantOwned):
    class Status(models.TextChoices):
        UPLOADED = "uploaded", _("uploaded")
        MAPPED = "mapped", _("columns mapped")
        RUNNING = "running", _("importing")
        DONE = "done", _("done")
        FAILED = "failed", _("failed")

    # Uploaded file, kept under MEDIA_ROOT/imports/<tenant>/ until the import's retention ends.
    file = models.FileField(upload_to="imports/%Y/%m/", max_length=300)
    original_name = models.CharField(max_length=255)
    encoding = models.CharField(max_length=32, blank=True)
    delimiter = models.CharField(max_length=1, default=",")
    # CSV column header -> contact field ("name", "phone", "email", "language", "tags",
    # "owner", "lifecycle_stage", "company", "attr:<key>") or "" to skip.
    mapping = models.JSONField(default=dict, blank=True)
    headers = models.JSONField(default=list, blank=True)
    consent = models.CharField(
        _("consent you attest for these contacts"),
        max_length=16,
        choices=ConsentAttestation.choices,
        blank=True,
    )
    consent_evidence = models.TextField(_("how they agreed"), blank=True)
    # Existing contacts: replace their non-blank values with the file's (otherwise only blank
    # fields are filled and tags added).
    overwrite = models.BooleanField(_("overwrite existing values"), default=False)
    # Country of numbers written without +country code (ISO 3166 alpha-2; empty: none).
    default_region = models.CharField(_("country of local numbers"), max_length=2, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.UPLOADED)
    total_rows = models.PositiveIntegerField(default=0)
    processed_rows = models.PositiveIntegerField(default=0)
    created_count = models.PositiveIntegerField(default=0)
    updated_count = models.PositiveIntegerField(default=0)
    error_count = models.PositiveIntegerField(default=0)
    # Rows not imported (bad or missing phone/e-mail) and rows merged into an earlier row.
    skipped_count = models.PositiveIntegerField(default=0)
    duplicate_count = models.PositiveIntegerField(default=0)
    # Per-row error report (CSV: row number, column, value, error).
    error_report = models.FileField(upload_to="imports/%Y/%m/", max_length=300, blank=True)
    failure_reason = models.CharField(max_length=300, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    @property
    def progress_percent(self) -> int:
        if not self.total_rows:
            return 100 if self.status == self.Status.DONE else 0
        return min(100, int(self.processed_rows * 100 / self.total_rows))


# ---------------------------------------------------------------------------------------------
# Lead intake
# ---------------------------------------------------------------------------------------------


class LeadSource(TenantOwned):
    """A connected lead form provider: Meta Lead Ads (a Facebook page's lead forms) or Google
    Ads lead form extensions. Each has its own webhook address (`token`)."""

    class Kind(models.TextChoices):
        META_LEAD_ADS = "meta_lead_ads", _("Meta Lead Ads")
        GOOGLE_ADS = "google_ads", _("Google Ads lead forms")

    kind = models.CharField(max_length=16, choices=Kind.choices)
    name = models.CharField(_("name"), max_length=100)
    token = models.CharField(max_length=64, unique=True, default=new_feed_token, editable=False)
    enabled = models.BooleanField(default=True)
    # Google Ads: the key the advertiser types into the lead form's webhook settings.
    google_key = EncryptedTextField(_("Google Ads webhook key"), blank=True)
    # Meta: the page whose forms are followed, a page access token to read leads, the app
    # secret that signs the webhooks, the verify token of the subscription handshake.
    meta_page_id = models.CharField(_("Facebook page id"), max_length=64, blank=True)
    meta_access_token = EncryptedTextField(_("page access token"), blank=True)
    meta_app_secret = EncryptedTextField(_("app secret"), blank=True)
    meta_verify_token = models.CharField(_("verify token"), max_length=100, blank=True)
    # What the form told the prospect they agree to (recorded in the consent ledger).
    consent_purpose = models.CharField(
        _("consent the form captures"),
        max_length=16,
        choices=ConsentAttestation.choices,
        default=ConsentAttestation.TRANSACTIONAL,
    )
    consent_wording = models.TextField(_("consent wording shown on the form"), blank=True)
    assign_owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("assign new leads to"),
    )
    welcome_channel = models.ForeignKey(
        "channels_app.Channel", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    welcome_template = models.ForeignKey(
        "channels_app.MessageTemplate",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    welcome_text = models.TextField(_("welcome message"), blank=True)
    received_count = models.PositiveIntegerField(default=0, editable=False)
    rejected_count = models.PositiveIntegerField(default=0, editable=False)
    last_received_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_error = models.CharField(max_length=300, blank=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class Lead(TenantOwned):
    """One lead received from a `LeadSource`, stored once per provider lead id."""

    class Status(models.TextChoices):
        RECEIVED = "received", _("received")
        PROCESSED = "processed", _("contact created or updated")
        FAILED = "failed", _("could not be processed")

    source = models.ForeignKey(LeadSource, on_delete=models.CASCADE, related_name="leads")
    external_id = models.CharField(max_length=128)
    form_id = models.CharField(max_length=128, blank=True)
    campaign = models.CharField(max_length=200, blank=True)
    # The answers as the provider sent them (personal data: covered by erasure and retention).
    fields = models.JSONField(default=dict, blank=True)
    contact = models.ForeignKey(
        Contact, on_delete=models.SET_NULL, null=True, blank=True, related_name="leads"
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RECEIVED)
    error = models.CharField(max_length=300, blank=True)
    # What became of the welcome message: sent, or why not (the gate's reason).
    welcome_note = models.CharField(max_length=300, blank=True)
    received_at = models.DateTimeField(default=timezone.now)
    is_test = models.BooleanField(default=False)

    class Meta:
        ordering = ["-received_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "source", "external_id"], name="lead_once_per_source"
            )
        ]
