"""CRM records. Contacts are the people a business talks to; the messaging pipeline creates
them from inbound messages (by E.164 phone), the CRM extends them."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from tenants.models import TenantOwned


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
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "phone"],
                condition=~models.Q(phone=""),
                name="contact_phone_unique_per_tenant",
            )
        ]
        indexes = [models.Index(fields=["tenant", "name"], name="contact_tenant_name")]

    def __str__(self):
        return self.display_name

    @property
    def display_name(self) -> str:
        return self.name or self.phone or self.email or _("Unknown contact")
