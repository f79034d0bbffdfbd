"""The Django admin, for platform staff only.

The tenant middleware grants staff platform access under /admin/, so admin pages may cross
tenants through each tenant-owned model's explicitly named `unscoped` manager. Secrets are never
shown: passwords are read-only hashes, second-factor secrets and provider tokens are hidden.
"""

from __future__ import annotations

from allauth.mfa.models import Authenticator
from allauth.socialaccount.models import SocialApp, SocialToken
from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from tenants import services
from tenants.models import ApiKey, Invitation, Membership, Tenant, TenantOwned, User

admin.site.site_header = _("Sales OS platform administration")
admin.site.site_title = _("Sales OS admin")
admin.site.index_title = _("Platform")


# --- The base for every tenant-owned model --------------------------------------------------


def _points_at_tenant_owned(field) -> bool:
    related = getattr(field, "related_model", None)
    return isinstance(related, type) and issubclass(related, TenantOwned)


class TenantOwnedAdmin(admin.ModelAdmin):
    """Admin for a `TenantOwned` model: every tenant's rows, filterable and searchable by tenant.

    - rows come from `model.unscoped` (the scoped default manager would raise: no tenant is
      active in the admin, only platform access);
    - the tenant is shown, filterable and searchable, never editable;
    - relations to other tenant-owned rows are read-only (a picker would need one tenant's rows,
      and a row must never point into another tenant);
    - rows are created inside their business through the product, not here.

    Subclasses add their own `list_display`, `list_filter` and `search_fields`; the tenant
    column, filter and search fields are added automatically.
    """

    list_select_related = ("tenant",)
    list_per_page = 50

    def get_queryset(self, request):
        queryset = self.model.unscoped.get_queryset().select_related("tenant")
        ordering = self.get_ordering(request)
        if ordering:
            queryset = queryset.order_by(*ordering)
        return queryset

    def get_list_display(self, request):
        display = list(super().get_list_display(request))
        if "tenant" not in display:
            display.insert(1 if display and display[0] != "__str__" else 0, "tenant")
        return display

    def get_list_filter(self, request):
        return ["tenant", *[f for f in super().get_list_filter(request) if f != "tenant"]]

    def get_search_fields(self, request):
        fields = list(super().get_search_fields(request))
        return [*fields, *[f for f in ("tenant__name", "tenant__slug") if f not in fields]]

    def get_readonly_fields(self, request, obj=None):
        readonly = list(super().get_readonly_fields(request, obj))
        related = [
            f.name
            for f in self.model._meta.get_fields()
            if (f.many_to_one or f.many_to_many) and f.concrete and _points_at_tenant_owned(f)
        ]
        return ["tenant", *[name for name in related if name not in readonly], *readonly]

    def get_fields(self, request, obj=None):
        fields = list(super().get_fields(request, obj))
        if "tenant" not in fields:
            fields.insert(0, "tenant")
        return fields

    def has_add_permission(self, request):
        return False


# --- Tenants ----------------------------------------------------------------------------------


class MembershipAdminRules:
    """Staff may add a member (e.g. to rescue a business whose owner left) but not change or
    remove one here: role changes and removals go through tenants.services, which keep the
    rule that a business never loses its last owner."""

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class MembershipInline(MembershipAdminRules, admin.TabularInline):
    model = Membership
    fk_name = "tenant"
    extra = 0
    fields = ("user", "role", "created_at", "last_used_at")
    readonly_fields = ("created_at", "last_used_at")
    raw_id_fields = ("user",)


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "status", "language", "time_zone", "member_count", "created_at")
    list_filter = ("status", "language")
    search_fields = ("name", "slug")
    readonly_fields = ("created_at",)
    inlines = [MembershipInline]
    fieldsets = (
        (None, {"fields": ("name", "slug", "status", "created_at")}),
        (_("Locale"), {"fields": ("language", "time_zone")}),
        (_("Privacy"), {"fields": Tenant.PRIVACY_SETTING_FIELDS}),
    )

    def get_queryset(self, request):
        from django.db.models import Count

        return super().get_queryset(request).annotate(_member_count=Count("memberships"))

    @admin.display(description=_("members"), ordering="_member_count")
    def member_count(self, tenant):
        return tenant._member_count

    def has_add_permission(self, request):
        # A business is created by its first owner (sign-up or "New business"), never ownerless.
        return False

    def has_delete_permission(self, request, obj=None):
        # A business is deleted by its owner's request, after a grace period, never from here.
        return False


# --- Users ------------------------------------------------------------------------------------


class UserCreationAdminForm(AdminUserCreationForm):
    class Meta:
        model = User
        fields = ("email", "full_name")


class UserChangeAdminForm(UserChangeForm):
    class Meta:
        model = User
        fields = "__all__"


class UserMembershipInline(MembershipInline):
    fk_name = "user"
    fields = ("tenant", "role", "created_at", "last_used_at")
    raw_id_fields = ("tenant",)


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    form = UserChangeAdminForm
    add_form = UserCreationAdminForm
    list_display = ("email", "full_name", "is_active", "is_staff", "date_joined", "last_login")
    list_filter = ("is_active", "is_staff", "is_superuser", "accepts_marketing_email")
    search_fields = ("email", "full_name")
    ordering = ("email",)
    readonly_fields = ("last_login", "date_joined", "accepted_terms_at")
    inlines = [UserMembershipInline]

    def get_inlines(self, request, obj):
        # The add page asks for the account only; businesses are joined afterwards.
        return self.inlines if obj is not None else []

    fieldsets = (
        (None, {"fields": ("email", "password")}),
        (
            _("Personal info"),
            {"fields": ("full_name", "accepts_marketing_email", "accepted_terms_at")},
        ),
        (
            _("Permissions"),
            {
                "fields": (
                    "is_active",
                    "is_staff",
                    "is_superuser",
                    "groups",
                    "user_permissions",
                )
            },
        ),
        (_("Important dates"), {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = (
        (
            None,
            {
                "classes": ("wide",),
                "fields": ("email", "full_name", "usable_password", "password1", "password2"),
            },
        ),
    )


# --- Memberships ------------------------------------------------------------------------------


@admin.register(Membership)
class MembershipAdmin(MembershipAdminRules, admin.ModelAdmin):
    list_display = ("user", "tenant", "role", "created_at", "last_used_at")
    list_filter = ("tenant", "role")
    search_fields = ("user__email", "user__full_name", "tenant__name", "tenant__slug")
    list_select_related = ("user", "tenant")
    raw_id_fields = ("user", "tenant")
    readonly_fields = ("created_at", "last_used_at")


# --- Invitations (tenant-owned) ---------------------------------------------------------------


@admin.register(Invitation)
class InvitationAdmin(TenantOwnedAdmin):
    list_display = ("email", "role", "state", "invited_by", "created_at", "expires_at")
    list_filter = ("role",)
    search_fields = ("email",)
    fields = (
        "email",
        "role",
        "invited_by",
        "created_at",
        "expires_at",
        "accepted_at",
        "accepted_by",
        "revoked_at",
    )
    readonly_fields = fields
    actions = ["revoke"]

    @admin.display(description=_("state"))
    def state(self, invitation):
        return invitation.state

    @admin.action(description=_("Withdraw the selected invitations"))
    def revoke(self, request, queryset):
        count = 0
        for invitation in queryset:
            if invitation.state == "pending":
                services.revoke_invitation(invitation=invitation)
                count += 1
        self.message_user(
            request,
            ngettext("%(count)d invitation withdrawn.", "%(count)d invitations withdrawn.", count)
            % {"count": count},
            messages.SUCCESS,
        )


# --- Third-party models that hold secrets ----------------------------------------------------
# Second-factor secrets (TOTP seeds, recovery codes) and OAuth tokens are never displayed.


for model in (Authenticator, SocialApp, SocialToken):
    if admin.site.is_registered(model):
        admin.site.unregister(model)


@admin.register(Authenticator)
class AuthenticatorAdmin(admin.ModelAdmin):
    list_display = ("user", "type", "created_at", "last_used_at")
    list_filter = ("type",)
    search_fields = ("user__email",)
    fields = ("user", "type", "created_at", "last_used_at")
    readonly_fields = fields

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class SocialAppForm(forms.ModelForm):
    secret = forms.CharField(
        label=_("secret"),
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text=_("Stored, never shown. Leave empty to keep the current one."),
    )

    class Meta:
        model = SocialApp
        fields = ("provider", "provider_id", "name", "client_id", "secret", "key", "settings")

    def clean_secret(self):
        secret = self.cleaned_data.get("secret")
        if not secret and self.instance.pk:
            return self.instance.secret
        return secret


@admin.register(SocialApp)
class SocialAppAdmin(admin.ModelAdmin):
    form = SocialAppForm
    list_display = ("name", "provider")


@admin.register(SocialToken)
class SocialTokenAdmin(admin.ModelAdmin):
    list_display = ("account", "app", "expires_at")
    fields = ("account", "app", "expires_at")
    readonly_fields = fields

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(ApiKey)
class ApiKeyAdmin(TenantOwnedAdmin):
    """Keys are listed by name and prefix only: the key itself is never stored, its hash never
    shown. Staff can see and not change them; owners revoke keys on their settings page."""

    list_display = ("name", "prefix", "created_at", "last_used_at", "revoked_at")
    list_filter = ("revoked_at",)
    fields = ("name", "prefix", "created_at", "last_used_at", "revoked_at")
    readonly_fields = fields

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
