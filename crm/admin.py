"""Platform admin for CRM records: every business's rows, read-only (changes go through the
CRM, where they keep their invariants). Lead-source secrets are never shown."""

from __future__ import annotations

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from channels_app.admin import ReadOnlyAdmin
from crm.models import (
    Appointment,
    Company,
    Contact,
    ContactImport,
    Deal,
    Lead,
    LeadSource,
    Pipeline,
    Task,
)


@admin.register(Contact)
class ContactAdmin(ReadOnlyAdmin):
    list_display = ("name", "phone", "source", "lifecycle_stage", "language", "created_at")
    list_filter = ("source", "lifecycle_stage", "language")
    search_fields = ("name", "phone", "email")
    fields = (
        "name",
        "phone",
        "email",
        "language",
        "source",
        "lifecycle_stage",
        "processing_restricted_at",
        "created_at",
        "updated_at",
    )


@admin.register(Company)
class CompanyAdmin(ReadOnlyAdmin):
    list_display = ("name", "domain", "created_at")
    search_fields = ("name", "domain")
    fields = ("name", "domain", "phone", "created_at")


@admin.register(Pipeline)
class PipelineAdmin(ReadOnlyAdmin):
    list_display = ("name", "position", "created_at")
    search_fields = ("name",)
    fields = ("name", "position", "created_at")


@admin.register(Deal)
class DealAdmin(ReadOnlyAdmin):
    list_display = ("title", "value", "currency", "closed_at", "created_at")
    search_fields = ("title",)
    fields = ("title", "value", "currency", "expected_close_date", "closed_at", "created_at")


@admin.register(Task)
class TaskAdmin(ReadOnlyAdmin):
    list_display = ("title", "due_at", "completed_at", "created_at")
    search_fields = ("title",)
    fields = ("title", "due_at", "completed_at", "created_at")


@admin.register(Appointment)
class AppointmentAdmin(ReadOnlyAdmin):
    list_display = ("title", "starts_at", "ends_at", "status", "reminder_sent_at")
    list_filter = ("status",)
    search_fields = ("title",)
    fields = ("title", "starts_at", "ends_at", "status", "reminder_sent_at", "created_at")


@admin.register(ContactImport)
class ContactImportAdmin(ReadOnlyAdmin):
    list_display = ("original_name", "status", "total_rows", "error_count", "created_at")
    list_filter = ("status",)
    fields = (
        "original_name",
        "status",
        "consent",
        "total_rows",
        "processed_rows",
        "created_count",
        "updated_count",
        "error_count",
        "failure_reason",
        "created_at",
        "finished_at",
    )


@admin.register(LeadSource)
class LeadSourceAdmin(ReadOnlyAdmin):
    list_display = ("name", "kind", "enabled", "received_count", "rejected_count")
    list_filter = ("kind", "enabled")
    search_fields = ("name",)
    fields = (
        "name",
        "kind",
        "enabled",
        "meta_page_id",
        "secrets",
        "received_count",
        "rejected_count",
        "last_error",
    )
    readonly_fields = ("secrets",)

    @admin.display(description=_("secrets"))
    def secrets(self, source):
        held = [
            str(LeadSource._meta.get_field(name).verbose_name)
            for name in ("google_key", "meta_access_token", "meta_app_secret")
            if getattr(source, name)
        ]
        return _("set: %(names)s") % {"names": ", ".join(held)} if held else _("none")


@admin.register(Lead)
class LeadAdmin(ReadOnlyAdmin):
    list_display = ("external_id", "source", "status", "is_test", "received_at")
    list_filter = ("status", "is_test")
    search_fields = ("external_id",)
    fields = ("external_id", "form_id", "campaign", "status", "error", "is_test", "received_at")
