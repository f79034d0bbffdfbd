"""Platform admin for the bot: profiles (the API key never shown), token balances (staff top
them up here), and the metering and run records (read-only). Knowledge-base text is the
business's own and stays in the product."""

from __future__ import annotations

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from channels_app.bot.models import AIUsage, BotProfile, BotRun, TokenBalance
from tenants.admin import TenantOwnedAdmin
from tenants.context import tenant_context


class _ReadOnly(TenantOwnedAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(BotProfile)
class BotProfileAdmin(_ReadOnly):
    list_display = ("id", "channel", "enabled", "model", "api_base_url", "own_key")
    list_filter = ("enabled",)
    exclude = ("api_key",)
    readonly_fields = ("channel",)  # a one-to-one: the tenant admin's rule covers foreign keys

    @admin.display(description=_("own API key"))
    def own_key(self, profile):
        return _("set") if profile.api_key else _("not set")


@admin.register(TokenBalance)
class TokenBalanceAdmin(TenantOwnedAdmin):
    list_display = ("id", "tokens_remaining", "updated_at")
    fields = ("tokens_remaining",)

    def has_add_permission(self, request):
        return False  # created with the business's first use of the bot

    def change_view(self, request, object_id, form_url="", extra_context=None):
        # The form's checks read through the scoped manager: run them in the row's business.
        balance = self.get_queryset(request).filter(pk=object_id).first()
        if balance is None:
            return super().change_view(request, object_id, form_url, extra_context)
        with tenant_context(balance.tenant):
            return super().change_view(request, object_id, form_url, extra_context)


@admin.register(AIUsage)
class AIUsageAdmin(_ReadOnly):
    list_display = ("id", "purpose", "provider", "model", "tokens_in", "tokens_out", "cost",
                    "created_at")  # fmt: skip
    list_filter = ("purpose", "provider")
    exclude = ("conversation",)


@admin.register(BotRun)
class BotRunAdmin(_ReadOnly):
    list_display = ("id", "outcome", "reason", "created_at")
    list_filter = ("outcome",)
    fields = ("outcome", "reason", "chunk_ids", "context_message_ids", "created_at")
