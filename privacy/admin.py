"""Platform admin for consent and opt-out wording.

The consent ledger is append-only (it is the proof of consent): no change, no delete, here as
everywhere. The derived state and the business's wording are read-only too; they change through
privacy.services, which keep the ledger and the state in step.
"""

from __future__ import annotations

from django.contrib import admin

from channels_app.admin import ReadOnlyAdmin
from privacy.models import ConsentEvent, ConsentState, MessagingPolicy


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
