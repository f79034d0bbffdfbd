"""Platform admin for consent and opt-out wording.

The consent ledger is append-only (it is the proof of consent): no change, no delete, here as
everywhere. The derived state and the business's wording are read-only too; they change through
privacy.services, which keep the ledger and the state in step.
"""

from __future__ import annotations

from django.contrib import admin

from channels_app.admin import ReadOnlyAdmin
from privacy.models import (
    BusinessExport,
    ConsentEvent,
    ConsentState,
    DataRequest,
    Incident,
    MessagingPolicy,
    PurgeReport,
    SecurityEvent,
)


@admin.register(ConsentEvent)
class ConsentEventAdmin(ReadOnlyAdmin):
    list_display = ("contact", "medium", "purpose", "action", "source", "created_at")
    list_filter = ("medium", "purpose", "action", "source")
    list_select_related = ("tenant", "contact")
    search_fields = ("contact__phone",)
    fields = (
        "contact",
        "medium",
        "purpose",
        "action",
        "source",
        "evidence",
        "channel",
        "message",
        "recorded_by",
        "created_at",
    )


@admin.register(ConsentState)
class ConsentStateAdmin(ReadOnlyAdmin):
    list_display = ("contact", "medium", "purpose", "action", "source", "changed_at")
    list_filter = ("medium", "purpose", "action")
    list_select_related = ("tenant", "contact")
    search_fields = ("contact__phone",)


@admin.register(MessagingPolicy)
class MessagingPolicyAdmin(ReadOnlyAdmin):
    list_display = ("tenant",)


@admin.register(PurgeReport)
class PurgeReportAdmin(ReadOnlyAdmin):
    list_display = ("tenant", "started_at", "dry_run", "status", "batches")
    list_filter = ("status", "dry_run")
    list_select_related = ("tenant",)


@admin.register(SecurityEvent)
class SecurityEventAdmin(ReadOnlyAdmin):
    list_display = ("tenant", "kind", "count", "ip_address", "last_seen_at")
    list_filter = ("kind",)
    list_select_related = ("tenant",)


@admin.register(Incident)
class IncidentAdmin(ReadOnlyAdmin):
    list_display = ("tenant", "title", "detected_at", "notify_by", "notified_at", "status")
    list_filter = ("status",)
    list_select_related = ("tenant",)


@admin.register(DataRequest)
class DataRequestAdmin(ReadOnlyAdmin):
    # Identifiers are shown (staff handle support cases); the export archive is not offered
    # here: it is downloaded by the business through its own, logged, page.
    list_display = ("kind", "status", "source", "due_date", "created_at")
    list_filter = ("kind", "status", "source")
    fields = (
        "kind",
        "status",
        "source",
        "subject_phone",
        "subject_email",
        "due_date",
        "created_at",
    )


@admin.register(BusinessExport)
class BusinessExportAdmin(ReadOnlyAdmin):
    # The archive is not offered here: the business downloads it through its own, logged, page.
    list_display = ("status", "requested_by_label", "requested_at", "rows", "expires_at")
    list_filter = ("status",)
    fields = (
        "status",
        "requested_by_label",
        "requested_at",
        "started_at",
        "progress_at",
        "finished_at",
        "rows",
        "size",
        "expires_at",
        "failure_reason",
        "removed_because",
    )
