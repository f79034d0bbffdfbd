"""Accounts, businesses (tenants), memberships, invitations, and the `TenantOwned` base."""

from __future__ import annotations

import zoneinfo

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.contrib.auth.models import UserManager as DjangoUserManager
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from tenants.context import PlatformAccessRequired, has_platform_access, require_current_tenant

# ---------------------------------------------------------------------------------------------
# Users
# ---------------------------------------------------------------------------------------------


class UserManager(DjangoUserManager):
    """Users sign in with their e-mail address; there is no username."""

    def _create_user(self, email, password, **extra_fields):
        if not email:
            raise ValueError("An e-mail address is required.")
        user = self.model(email=self.normalize_email(email), **extra_fields)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email=None, password=None, **extra_fields):
        extra_fields.setdefault("is_staff", False)
        extra_fields.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra_fields)

    def create_superuser(self, email=None, password=None, **extra_fields):
        extra_fields["is_staff"] = True
        extra_fields["is_superuser"] = True
        return self._create_user(email, password, **extra_fields)


class User(AbstractUser):
    username = None
    first_name = None
    last_name = None
    email = models.EmailField(_("e-mail address"), unique=True)
    full_name = models.CharField(_("full name"), max_length=150, blank=True)
    # P19: account holders get marketing e-mail only when they ticked the box.
    accepts_marketing_email = models.BooleanField(_("product news by e-mail"), default=False)
    accepted_terms_at = models.DateTimeField(null=True, blank=True)

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    objects = UserManager()

    class Meta:
        ordering = ["email"]

    def __str__(self):
        return self.email

    def get_full_name(self):
        return self.full_name or self.email

    def get_short_name(self):
        return self.full_name.split(" ")[0] if self.full_name else self.email


# ---------------------------------------------------------------------------------------------
# Tenants
# ---------------------------------------------------------------------------------------------

RESERVED_SLUGS = frozenset(
    {"admin", "api", "app", "accounts", "static", "media", "hooks", "new", "www", "settings"}
)

slug_validator = RegexValidator(
    r"^[a-z0-9](?:[a-z0-9-]{1,48}[a-z0-9])$",
    _(
        "Use 3 to 50 lowercase letters, digits and hyphens, "
        "starting and ending with a letter or digit."
    ),
)


def validate_slug_not_reserved(value: str) -> None:
    if value in RESERVED_SLUGS:
        raise ValidationError(_("“%(slug)s” is reserved; choose another."), params={"slug": value})


def parse_weekend_days(value: str) -> frozenset[int]:
    """ "5,6" -> {5, 6} (Monday is 0); ValueError for anything else."""
    days = set()
    for part in (value or "").replace(" ", "").split(","):
        if not part:
            continue
        if not part.isdigit() or int(part) > 6:
            raise ValueError(part)
        days.add(int(part))
    return frozenset(days)


def parse_holidays(value: str) -> frozenset:
    """One ISO date (YYYY-MM-DD) per line or comma-separated; ValueError for anything else."""
    import datetime

    found = set()
    for part in (value or "").replace(",", "\n").splitlines():
        part = part.strip()
        if part:
            found.add(datetime.date.fromisoformat(part))
    return frozenset(found)


def validate_weekend_days(value: str) -> None:
    try:
        days = parse_weekend_days(value)
    except ValueError:
        raise ValidationError(
            _("Use day numbers from 0 (Monday) to 6 (Sunday), separated by commas.")
        ) from None
    if len(days) == 7:
        raise ValidationError(_("At least one day of the week must be a working day."))


def validate_holidays(value: str) -> None:
    try:
        parse_holidays(value)
    except ValueError:
        raise ValidationError(
            _("Write one date per line as YYYY-MM-DD, e.g. 2026-12-25.")
        ) from None


def validate_time_zone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(_("“%(tz)s” is not a known time zone."), params={"tz": value})


class Tenant(models.Model):
    """A business. Every tenant-owned row points at one."""

    class DeadlineKind(models.TextChoices):
        BUSINESS_DAYS = "business", _("business days")
        CALENDAR_DAYS = "calendar", _("calendar days")

    class Status(models.TextChoices):
        ACTIVE = "active", _("active")
        DELETION_REQUESTED = "deletion_requested", _("deletion requested")

    name = models.CharField(_("business name"), max_length=120)
    slug = models.SlugField(
        _("address"),
        max_length=50,
        unique=True,
        validators=[slug_validator, validate_slug_not_reserved],
        help_text=_("Used in your dashboard's address: /app/<address>/"),
    )
    time_zone = models.CharField(
        _("time zone"), max_length=64, default="UTC", validators=[validate_time_zone]
    )
    language = models.CharField(
        _("language"), max_length=8, choices=settings.LANGUAGES, default="en"
    )
    status = models.CharField(max_length=32, choices=Status.choices, default=Status.ACTIVE)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    # Data subject request deadline (P7): 7 business days unless the business says otherwise.
    request_deadline_days = models.PositiveSmallIntegerField(
        _("data request deadline"), default=7, validators=[MinValueValidator(1)]
    )
    request_deadline_kind = models.CharField(
        _("deadline counted in"),
        max_length=16,
        choices=DeadlineKind.choices,
        default=DeadlineKind.BUSINESS_DAYS,
    )
    # The business's calendar for business-day deadlines: weekend days (0 = Monday) and holidays.
    request_weekend_days = models.CharField(
        _("weekend days"),
        max_length=20,
        default="5,6",
        blank=True,
        validators=[validate_weekend_days],
        help_text=_("Day numbers, 0 = Monday … 6 = Sunday; default Saturday and Sunday (5,6)."),
    )
    request_holidays = models.TextField(
        _("holidays"),
        blank=True,
        validators=[validate_holidays],
        help_text=_("Days that do not count towards a deadline: one date per line, YYYY-MM-DD."),
    )
    # Retention (P9); 0 means keep (not for export files). Enforced by the privacy purge.
    message_retention_days = models.PositiveIntegerField(
        _("keep messages after a conversation is resolved (days)"), default=30
    )
    webhook_payload_retention_days = models.PositiveIntegerField(
        _("keep raw webhook payloads (days)"), default=7
    )
    access_log_retention_days = models.PositiveIntegerField(
        _("keep the access log (days)"), default=365
    )
    # Never 0 ("keep"): an archive of a person's data must not stay downloadable for ever.
    export_file_retention_days = models.PositiveIntegerField(
        _("keep finished export files (days)"),
        default=7,
        validators=[
            MinValueValidator(
                1, message=_("Export files hold people's data: keep them for at least one day.")
            )
        ],
    )

    # Deletion (P10): requested by an owner, locked for a grace period, then purged.
    deletion_requested_at = models.DateTimeField(null=True, blank=True)
    deletion_requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    deletion_due_at = models.DateTimeField(null=True, blank=True)

    # The data-request deadline and retention settings, as the settings page and admin show them.
    PRIVACY_SETTING_FIELDS = (
        "request_deadline_days",
        "request_deadline_kind",
        "request_weekend_days",
        "request_holidays",
        "message_retention_days",
        "webhook_payload_retention_days",
        "access_log_retention_days",
        "export_file_retention_days",
    )

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.time_zone)

    @property
    def is_locked(self) -> bool:
        """Deletion is scheduled: nothing works but the page that can restore it."""
        return self.status == self.Status.DELETION_REQUESTED


class Role(models.TextChoices):
    OWNER = "owner", _("Owner")
    ADMIN = "admin", _("Admin")
    AGENT = "agent", _("Agent")


# Who may do what; the single permission table every view consults through `require_role`.
ROLE_RANK = {Role.AGENT: 1, Role.ADMIN: 2, Role.OWNER: 3}


class Membership(models.Model):
    """A user's place in a tenant.

    Platform-level, not `TenantOwned`: the middleware must read it before a tenant is active,
    and a person's tenant switcher lists memberships across tenants. Access to it is always
    through the user or the tenant.
    """

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(_("role"), max_length=16, choices=Role.choices, default=Role.AGENT)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "user"], name="membership_unique_per_tenant")
        ]
        ordering = ["tenant__name"]

    def __str__(self):
        return f"{self.user} @ {self.tenant} ({self.role})"

    def has_role(self, minimum: str) -> bool:
        return ROLE_RANK[Role(self.role)] >= ROLE_RANK[Role(minimum)]

    @property
    def is_owner(self) -> bool:
        return self.role == Role.OWNER


# ---------------------------------------------------------------------------------------------
# The tenant-owned base
# ---------------------------------------------------------------------------------------------


class TenantQuerySet(models.QuerySet):
    pass


class TenantManager(models.Manager.from_queryset(TenantQuerySet)):
    """The default manager: only the active tenant's rows, and an error when none is active."""

    def get_queryset(self):
        tenant = require_current_tenant()
        return super().get_queryset().filter(tenant_id=tenant.pk)


class UnscopedManager(models.Manager.from_queryset(TenantQuerySet)):
    """Every tenant's rows: only inside `platform_access()` (admin, purges, tenant deletion)."""

    def get_queryset(self):
        if not has_platform_access():
            raise PlatformAccessRequired(
                "The unscoped manager crosses tenants; wrap the work in platform_access()."
            )
        return super().get_queryset()


class TenantOwned(models.Model):
    """Base of every model whose rows belong to one business.

    - `objects` is scoped to the active tenant and raises when none is active;
    - `unscoped` crosses tenants, only inside `platform_access()`;
    - saving fills the tenant from the active one and refuses foreign keys into another tenant;
    - on PostgreSQL a row-level security policy is installed on the table after migrate
      (tenants.rls), so a query that slips past the manager still sees only its tenant.
    """

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+", editable=False)

    objects = TenantManager()
    unscoped = UnscopedManager()

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        if self.tenant_id is None:
            self.tenant = require_current_tenant()
        elif not has_platform_access() and self.tenant_id != require_current_tenant().pk:
            # The same rule the PostgreSQL policy enforces, so SQLite keeps it too.
            raise ValidationError(_("This belongs to another business."), code="cross_tenant")
        self.check_same_tenant()
        super().save(*args, **kwargs)

    def clean(self):
        super().clean()
        self.check_same_tenant()

    def check_same_tenant(self) -> None:
        """Foreign keys never cross tenants: every related tenant-owned row must be ours."""
        for field in self._meta.concrete_fields:
            if not field.is_relation or field.name == "tenant":
                continue
            related_model = field.related_model
            if not (isinstance(related_model, type) and issubclass(related_model, TenantOwned)):
                continue
            related_id = getattr(self, field.attname)
            if related_id is None:
                continue
            if field.is_cached(self):
                related_tenant_id = getattr(self, field.name).tenant_id
            else:
                related_tenant_id = (
                    related_model._base_manager.filter(pk=related_id)
                    .values_list("tenant_id", flat=True)
                    .first()
                )
            if related_tenant_id != self.tenant_id:
                raise ValidationError(
                    {field.name: _("This belongs to another business.")},
                    code="cross_tenant",
                )


def tenant_owned_models() -> list[type[models.Model]]:
    from django.apps import apps

    return [m for m in apps.get_models() if issubclass(m, TenantOwned)]


# ---------------------------------------------------------------------------------------------
# API keys
# ---------------------------------------------------------------------------------------------


class ApiKey(TenantOwned):
    """A key for the business's REST API. Only a SHA-256 hash of the key is stored, and a short
    prefix to tell keys apart; the key itself is shown once, when it is created."""

    name = models.CharField(_("name"), max_length=100)
    prefix = models.CharField(max_length=16, editable=False)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


# ---------------------------------------------------------------------------------------------
# Invitations
# ---------------------------------------------------------------------------------------------


class InvitationQuerySet(TenantQuerySet):
    def pending(self):
        return self.filter(
            accepted_at__isnull=True, revoked_at__isnull=True, expires_at__gt=timezone.now()
        )


class Invitation(TenantOwned):
    """An e-mailed, signed, single-use, expiring invitation to join a tenant with a role."""

    email = models.EmailField(_("e-mail address"))
    role = models.CharField(_("role"), max_length=16, choices=Role.choices, default=Role.AGENT)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = TenantManager.from_queryset(InvitationQuerySet)()
    unscoped = UnscopedManager.from_queryset(InvitationQuerySet)()

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "email"],
                condition=models.Q(accepted_at__isnull=True, revoked_at__isnull=True),
                name="invitation_one_open_per_email",
            )
        ]

    def __str__(self):
        return f"{self.email} → {self.tenant_id} ({self.role})"

    @property
    def state(self) -> str:
        if self.accepted_at:
            return "accepted"
        if self.revoked_at:
            return "revoked"
        if self.expires_at <= timezone.now():
            return "expired"
        return "pending"
