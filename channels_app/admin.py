"""Platform admin for the messaging models.

Provider credentials never appear: they are left out of every form and page, which only say
whether each one is set. Message bodies and raw webhook payloads are personal data: the lists
leave them out and only an object's own page shows them, so browsing a list of rows does not
put customers' words on the screen. Messages, events and templates are records of what
happened (written by the pipeline): read-only here.
"""

from __future__ import annotations

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from channels_app.models import (
    Channel,
    Conversation,
    InboundWebhook,
    Message,
    MessageStatusEvent,
    MessageTemplate,
)
from tenants.admin import TenantOwnedAdmin

SECRET_FIELDS = (
    "twilio_auth_token",
    "twilio_webhook_signing_secret",
    "meta_access_token",
    "meta_app_secret",
    "meta_verify_token",
    "sandbox_secret",
    "webhook_token",  # the unguessable part of the webhook URLs
)


class ReadOnlyAdmin(TenantOwnedAdmin):
    """A record written by the product: staff may look, not change or delete."""

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


def _secret_state(label):
    def state(self, channel):
        return _("set") if getattr(channel, label) else _("not set")

    state.short_description = Channel._meta.get_field(label).verbose_name
    if label == "sandbox_secret":
        state.short_description = _("sandbox signing key")
    elif label == "webhook_token":
        state.short_description = _("webhook token")
    return state


@admin.register(Channel)
class ChannelAdmin(TenantOwnedAdmin):
    list_display = (
        "name",
        "kind",
        "sender",
        "is_active",
        "connection_ok",
        "last_inbound_at",
        "rejected_signatures",
        "rejected_malformed",
        "created_at",
    )
    list_filter = ("kind", "is_active", "connection_ok")
    search_fields = ("name", "sender", "twilio_account_sid", "meta_phone_number_id")
    exclude = SECRET_FIELDS
    # Staff may switch a channel off or slow it down; credentials belong to the business.
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "tenant",
                    "name",
                    "kind",
                    "sender",
                    "is_active",
                    "rate_limit_per_second",
                    "created_at",
                    "webhook_token_state",
                )
            },
        ),
        (
            _("Twilio"),
            {
                "fields": (
                    "twilio_account_sid",
                    "twilio_auth_token_state",
                    "twilio_from",
                    "twilio_messaging_service_sid",
                    "twilio_webhook_signing_secret_state",
                    "provider_confirms_opt_out",
                )
            },
        ),
        (
            _("Meta"),
            {
                "fields": (
                    "meta_phone_number_id",
                    "meta_business_account_id",
                    "meta_access_token_state",
                    "meta_app_secret_state",
                    "meta_verify_token_state",
                )
            },
        ),
        (_("Sandbox"), {"fields": ("sandbox_secret_state",)}),
        (
            _("Health"),
            {
                "fields": (
                    "last_inbound_at",
                    "last_error_at",
                    "last_error",
                    "rejected_signatures",
                    "rejected_malformed",
                    "last_rejection_at",
                    "last_rejection_reason",
                    "connection_checked_at",
                    "connection_ok",
                    "connection_detail",
                    "templates_synced_at",
                )
            },
        ),
    )
    readonly_fields = (
        "kind",
        "sender",
        "created_at",
        "twilio_account_sid",
        "twilio_from",
        "twilio_messaging_service_sid",
        "provider_confirms_opt_out",
        "meta_phone_number_id",
        "meta_business_account_id",
        "last_inbound_at",
        "last_error_at",
        "last_error",
        "rejected_signatures",
        "rejected_malformed",
        "last_rejection_at",
        "last_rejection_reason",
        "connection_checked_at",
        "connection_ok",
        "connection_detail",
        "templates_synced_at",
        *(f"{name}_state" for name in SECRET_FIELDS),
    )

    twilio_auth_token_state = _secret_state("twilio_auth_token")
    twilio_webhook_signing_secret_state = _secret_state("twilio_webhook_signing_secret")
    meta_access_token_state = _secret_state("meta_access_token")
    meta_app_secret_state = _secret_state("meta_app_secret")
    meta_verify_token_state = _secret_state("meta_verify_token")
    sandbox_secret_state = _secret_state("sandbox_secret")
    webhook_token_state = _secret_state("webhook_token")

    def has_delete_permission(self, request, obj=None):
        # Deleting a channel deletes its conversations: the business does it from its page.
        return False


@admin.register(Conversation)
class ConversationAdmin(ReadOnlyAdmin):
    list_display = ("id", "channel", "status", "assignee", "bot_active", "last_message_at")
    list_filter = ("status", "bot_active")
    list_select_related = ("tenant", "channel", "assignee")
    search_fields = ("contact__phone",)
    # The preview is message text: only on the conversation's own page.
    fields = (
        "channel",
        "contact",
        "status",
        "assignee",
        "bot_active",
        "handoff_reason",
        "last_inbound_at",
        "last_message_at",
        "last_message_preview",
        "unread_count",
        "resolved_at",
        "created_at",
    )


@admin.register(Message)
class MessageAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "channel",
        "direction",
        "sender_kind",
        "status",
        "error_code",
        "created_at",
    )
    list_filter = ("direction", "sender_kind", "status")
    list_select_related = ("tenant", "channel")
    search_fields = ("provider_message_id", "idempotency_key")
    fields = (
        "conversation",
        "channel",
        "direction",
        "sender_kind",
        "author",
        "body",
        "media",
        "template",
        "template_variables",
        "purpose",
        "provider_message_id",
        "idempotency_key",
        "status",
        "error_code",
        "error_reason",
        "attempts",
        "created_at",
        "status_changed_at",
        "sent_at",
        "delivered_at",
        "read_at",
    )


@admin.register(MessageStatusEvent)
class MessageStatusEventAdmin(ReadOnlyAdmin):
    list_display = (
        "provider_message_id",
        "status",
        "provider_status",
        "error_code",
        "applied",
        "received_at",
    )
    list_filter = ("status", "applied")
    search_fields = ("provider_message_id",)


@admin.register(MessageTemplate)
class MessageTemplateAdmin(ReadOnlyAdmin):
    list_display = ("name", "language", "channel", "category", "status", "synced_at")
    list_filter = ("status", "category")
    list_select_related = ("tenant", "channel")
    search_fields = ("name", "provider_template_id")


@admin.register(InboundWebhook)
class InboundWebhookAdmin(ReadOnlyAdmin):
    # The raw body holds customers' numbers and words: only on the webhook's own page.
    list_display = ("id", "channel", "received_at", "content_type", "events", "duplicates")
    list_select_related = ("tenant", "channel")
    fields = ("channel", "received_at", "content_type", "events", "duplicates", "body")


from channels_app.bot import admin as bot_admin  # noqa: E402, F401 - registers the bot's models
