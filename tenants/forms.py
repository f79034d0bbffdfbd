from __future__ import annotations

import zoneinfo

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from tenants.context import platform_access
from tenants.models import Invitation, Role, Tenant

TIME_ZONE_CHOICES = [(tz, tz) for tz in sorted(zoneinfo.available_timezones())]


def _pending_invitation_for(email: str) -> bool:
    # The person typed their own address; whether an invitation awaits it is theirs to know.
    with platform_access():
        return Invitation.unscoped.pending().filter(email__iexact=email).exists()


class SignupExtraForm(forms.Form):
    """Fields allauth's sign-up form (and the social sign-up form) adds to e-mail and password.

    allauth builds its sign-up form on top of this class (ACCOUNT_SIGNUP_FORM_CLASS), so `clean`
    sees the e-mail address too, and `signup` runs once the user exists, before allauth records
    the e-mail address (and decides whether it still needs verifying).
    """

    field_order = [
        "business_name",
        "email",
        "password1",
        "password2",
        "accept_terms",
        "accepts_marketing_email",
    ]

    business_name = forms.CharField(
        label=_("Business name"),
        max_length=120,
        required=False,
        help_text=_("Leave empty if you are joining a business that invited you."),
        widget=forms.TextInput(attrs={"autocomplete": "organization"}),
    )
    accept_terms = forms.BooleanField(
        label=_("I am 18 or older and I accept the terms of service and the privacy policy."),
        required=True,
        error_messages={"required": _("You must be 18 or older and accept the terms to sign up.")},
    )
    accepts_marketing_email = forms.BooleanField(
        label=_("Send me occasional product news by e-mail."), required=False
    )

    def clean(self):
        cleaned = super().clean()
        email = cleaned.get("email") or self.data.get("email", "")
        if not (cleaned.get("business_name") or "").strip() and not (
            email and _pending_invitation_for(email)
        ):
            self.add_error("business_name", _("Give your business a name."))
        return cleaned

    def signup(self, request, user):
        from tenants import services

        user.accepted_terms_at = timezone.now()
        user.accepts_marketing_email = self.cleaned_data.get("accepts_marketing_email", False)
        user.save(update_fields=["accepted_terms_at", "accepts_marketing_email"])

        # The invitation link proved one address (the view stashed it for allauth, which then
        # skips the verification e-mail). It only counts for that address: someone signing up
        # with another one verifies it the usual way, and the stash must not replace it.
        stashed = request.session.get("account_verified_email")
        if stashed and stashed.lower() != (user.email or "").lower():
            request.session["account_verified_email"] = None
        token = request.session.get("invitation_token")
        if token:
            try:
                services.accept_invitation(token=token, user=user)
            except services.InvitationInvalid:
                pass  # withdrawn or expired meanwhile, or another address: they simply don't join
            else:
                request.session.pop("invitation_token", None)

        name = (self.cleaned_data.get("business_name") or "").strip()
        if name:
            services.create_tenant(name=name, owner=user)


class NewTenantForm(forms.Form):
    name = forms.CharField(label=_("Business name"), max_length=120)
    slug = forms.CharField(
        label=_("Address"),
        max_length=50,
        required=False,
        help_text=_("Optional: /app/<address>/. Lowercase letters, digits and hyphens."),
    )
    time_zone = forms.ChoiceField(label=_("Time zone"), choices=TIME_ZONE_CHOICES, initial="UTC")

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        if not name:
            raise forms.ValidationError(_("Give your business a name."))
        return name

    def clean_slug(self):
        from tenants import services

        slug = self.cleaned_data["slug"].strip().lower()
        if slug:
            services.validate_slug(slug)
        return slug


class TenantSettingsForm(forms.ModelForm):
    time_zone = forms.ChoiceField(label=_("Time zone"), choices=TIME_ZONE_CHOICES)

    class Meta:
        model = Tenant
        fields = ["name", "time_zone", "language", *Tenant.PRIVACY_SETTING_FIELDS]


class InviteForm(forms.Form):
    email = forms.EmailField(
        label=_("E-mail address"), widget=forms.EmailInput(attrs={"autocomplete": "off"})
    )
    role = forms.ChoiceField(label=_("Role"), choices=Role.choices, initial=Role.AGENT)


class RoleForm(forms.Form):
    role = forms.ChoiceField(label=_("Role"), choices=Role.choices)
