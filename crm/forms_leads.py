"""Forms of the lead sources page."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from channels_app.models import Channel, MessageTemplate
from crm.models import LeadSource
from tenants.models import Membership

COMMON = [
    "name", "consent_purpose", "consent_wording", "assign_owner", "welcome_channel",
    "welcome_template", "welcome_text",
]  # fmt: skip
SECRET_FIELDS = ("google_key", "meta_access_token", "meta_app_secret")


class LeadSourceForm(forms.ModelForm):
    # Declared here: the default manager of tenant-owned models needs an active tenant, which
    # only exists per request (the querysets are set in __init__).
    welcome_channel = forms.ModelChoiceField(
        queryset=Channel._base_manager.none(), required=False, label=_("Welcome channel")
    )
    welcome_template = forms.ModelChoiceField(
        queryset=MessageTemplate._base_manager.none(),
        required=False,
        label=_("Welcome template (WhatsApp)"),
    )

    class Meta:
        model = LeadSource
        fields = COMMON

    def __init__(self, *args, tenant, kind, **kwargs):
        super().__init__(*args, **kwargs)
        self.kind = kind
        self.fields["consent_wording"].widget = forms.Textarea(attrs={"rows": 3})
        self.fields["consent_wording"].help_text = _(
            "The words next to the form's consent box, recorded as evidence with every lead."
        )
        self.fields["welcome_text"].widget = forms.Textarea(attrs={"rows": 3})
        self.fields["welcome_text"].help_text = _(
            "Sent on the welcome channel when the consent allows it ({name} is the first name). "
            "On WhatsApp choose an approved template instead: a new lead has not written yet."
        )
        user_ids = Membership.objects.filter(tenant=tenant).values_list("user_id", flat=True)
        owner_field = self.fields["assign_owner"]
        owner_field.queryset = owner_field.queryset.model.objects.filter(pk__in=user_ids)
        self.fields["welcome_channel"].queryset = Channel.objects.all()
        self.fields["welcome_template"].queryset = MessageTemplate.objects.all()
        if kind == LeadSource.Kind.GOOGLE_ADS:
            self.fields["google_key"] = forms.CharField(
                label=_("Webhook key"),
                required=self.instance.pk is None,
                max_length=200,
                help_text=_(
                    "Type the same key into the lead form's webhook settings in Google Ads. "
                    "Stored encrypted; leave empty to keep the current one."
                ),
                widget=forms.PasswordInput(render_value=False),
            )
        else:
            self.fields["meta_page_id"] = forms.CharField(
                label=_("Facebook page id"), max_length=64, required=True,
                initial=self.instance.meta_page_id,
            )  # fmt: skip
            self.fields["meta_verify_token"] = forms.CharField(
                label=_("Verify token"), max_length=100, required=True,
                initial=self.instance.meta_verify_token,
                help_text=_("Any phrase; type the same in the app's webhook subscription."),
            )  # fmt: skip
            for name, label in (
                ("meta_access_token", _("Page access token")),
                ("meta_app_secret", _("App secret")),
            ):
                self.fields[name] = forms.CharField(
                    label=label,
                    required=self.instance.pk is None,
                    widget=forms.PasswordInput(render_value=False),
                    help_text=_("Stored encrypted; leave empty to keep the current one."),
                )

    def clean(self):
        cleaned = super().clean()
        channel, template = cleaned.get("welcome_channel"), cleaned.get("welcome_template")
        if template is not None and channel is not None and template.channel_id != channel.pk:
            self.add_error("welcome_template", _("This template belongs to another channel."))
        if template is not None and cleaned.get("welcome_text", "").strip():
            self.add_error("welcome_text", _("Choose a template or write a text, not both."))
        if (template is not None or cleaned.get("welcome_text", "").strip()) and channel is None:
            self.add_error(
                "welcome_channel", _("Choose the channel the welcome message goes out on.")
            )
        return cleaned

    def save(self, commit=True):
        source = super().save(commit=False)
        source.kind = self.kind
        for name in ("meta_page_id", "meta_verify_token"):
            if name in self.cleaned_data:
                setattr(source, name, self.cleaned_data[name].strip())
        for name in SECRET_FIELDS:
            value = (self.cleaned_data.get(name) or "").strip()
            if value:
                setattr(source, name, value)
        if commit:
            source.save()
        return source
