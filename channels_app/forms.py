"""Forms of the channel setup pages and of the business's opt-out wording.

Credentials are password inputs that never render a value. On an existing channel an empty
credential means "keep the current one", and the page only says whether one is set.
"""

from __future__ import annotations

import re

from django import forms
from django.utils.translation import gettext_lazy as _

from channels_app.models import Channel
from channels_app.services.channels import new_verify_token
from crm.phones import InvalidPhoneNumber, normalize_phone
from privacy.keywords import BUILT_IN, Keyword, normalise, split_extra
from privacy.models import MessagingPolicy

ACCOUNT_SID = re.compile(r"AC[0-9a-fA-F]{32}")
MESSAGING_SERVICE_SID = re.compile(r"MG[0-9a-fA-F]{32}")
META_ID = re.compile(r"[0-9]{5,30}")
MAX_RATE_PER_SECOND = 1000


def secret_field(label, *, help_text="", required=True) -> forms.CharField:
    return forms.CharField(
        label=label,
        required=required,
        strip=True,
        max_length=500,
        help_text=help_text,
        # render_value=False: a secret is never sent back to the browser, even after an error.
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
    )


class ChannelForm(forms.Form):
    """The fields every kind shares. Subclasses list their secrets in `secret_fields`."""

    kind: str = ""
    secret_fields: tuple[str, ...] = ()
    # Secrets that may stay empty even on a new channel.
    optional_secrets: tuple[str, ...] = ()

    name = forms.CharField(label=_("Name"), max_length=100)
    rate_limit_per_second = forms.IntegerField(
        label=_("Messages per second"),
        required=False,
        min_value=1,
        max_value=MAX_RATE_PER_SECOND,
    )
    is_active = forms.BooleanField(
        label=_("Active (messages can be sent through this channel)"), required=False
    )

    def __init__(self, *args, instance: Channel | None = None, **kwargs):
        self.instance = instance
        if instance is not None:
            kwargs.setdefault("initial", self.initial_from(instance))
        super().__init__(*args, **kwargs)
        default = Channel.DEFAULT_RATE_PER_SECOND[Channel.Kind(self.kind)]
        self.fields["rate_limit_per_second"].help_text = _(
            "Empty: the provider's default for this kind of channel, %(rate)s per second."
        ) % {"rate": default}
        self.fields["rate_limit_per_second"].widget.attrs["placeholder"] = str(default)
        if instance is None:
            del self.fields["is_active"]  # a new channel starts active
        for name in self.secret_fields:
            field = self.fields[name]
            if instance is None:
                field.required = name not in self.optional_secrets
                continue
            # Say whether a value is stored, never what it is.
            field.required = False
            state = _("Set.") if getattr(instance, name) else _("Not set.")
            field.help_text = " ".join(
                str(part)
                for part in (state, _("Leave empty to keep the current value."), field.help_text)
                if part
            )

    def initial_from(self, channel: Channel) -> dict:
        names = [n for n in self.base_fields if n not in self.secret_fields]
        return {name: getattr(channel, name) for name in names if hasattr(channel, name)}

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        if not name:
            raise forms.ValidationError(_("Give the channel a name."))
        return name

    def channel_fields(self) -> dict:
        """The cleaned values for `create_channel` / `update_channel` (secrets left empty are
        left out: the current value stays)."""
        values = dict(self.cleaned_data)
        values.pop("name", None)
        for name in self.secret_fields:
            if not values.get(name):
                values.pop(name, None)
        return values


class TwilioChannelForm(ChannelForm):
    kind = Channel.Kind.TWILIO_WHATSAPP
    secret_fields = ("twilio_auth_token", "twilio_webhook_signing_secret")
    optional_secrets = ("twilio_webhook_signing_secret",)

    twilio_account_sid = forms.CharField(
        label=_("Account SID"),
        max_length=34,
        help_text=_("Starts with AC; on the Twilio console's home page."),
    )
    twilio_auth_token = secret_field(
        _("Auth token"), help_text=_("The primary auth token, next to the account SID.")
    )
    twilio_from = forms.CharField(
        label=_("Sender number"),
        max_length=40,
        required=False,
        help_text=_("The Twilio number customers see, in international format, e.g. +14155550123."),
    )
    twilio_messaging_service_sid = forms.CharField(
        label=_("Messaging service SID"),
        max_length=34,
        required=False,
        help_text=_("Starts with MG. Use it instead of, or together with, the sender number."),
    )
    twilio_webhook_signing_secret = secret_field(
        _("Webhook shared key (optional)"),
        required=False,
        help_text=_(
            "Only if your Twilio webhooks are signed with a shared key instead of the auth token."
        ),
    )

    def clean_twilio_account_sid(self):
        sid = self.cleaned_data["twilio_account_sid"].strip()
        if not ACCOUNT_SID.fullmatch(sid):
            raise forms.ValidationError(
                _("An account SID is “AC” followed by 32 letters and digits (0-9, a-f).")
            )
        return sid

    def clean_twilio_from(self):
        raw = self.cleaned_data["twilio_from"].strip()
        if not raw:
            return ""
        try:
            return normalize_phone(raw)
        except InvalidPhoneNumber as exc:
            raise forms.ValidationError(exc.messages) from exc

    def clean_twilio_messaging_service_sid(self):
        sid = self.cleaned_data["twilio_messaging_service_sid"].strip()
        if sid and not MESSAGING_SERVICE_SID.fullmatch(sid):
            raise forms.ValidationError(
                _("A messaging service SID is “MG” followed by 32 letters and digits (0-9, a-f).")
            )
        return sid

    def clean(self):
        cleaned = super().clean()
        has_number = "twilio_from" in cleaned and cleaned["twilio_from"]
        has_service = (
            "twilio_messaging_service_sid" in cleaned and cleaned["twilio_messaging_service_sid"]
        )
        failed = {"twilio_from", "twilio_messaging_service_sid"} & set(self.errors)
        if not has_number and not has_service and not failed:
            self.add_error(
                "twilio_from",
                _("Enter the sender number, the messaging service SID, or both."),
            )
        return cleaned


class TwilioSmsChannelForm(TwilioChannelForm):
    kind = Channel.Kind.TWILIO_SMS

    provider_confirms_opt_out = forms.BooleanField(
        label=_("Twilio sends its own STOP confirmation"),
        required=False,
        initial=True,
        help_text=_(
            "Keep this on unless you turned off Twilio's opt-out handling for this number; "
            "otherwise customers would get two confirmations."
        ),
    )


class MetaChannelForm(ChannelForm):
    kind = Channel.Kind.META_WHATSAPP
    secret_fields = ("meta_access_token", "meta_app_secret", "meta_verify_token")

    meta_phone_number_id = forms.CharField(
        label=_("Phone number ID"),
        max_length=30,
        help_text=_("WhatsApp > API setup in your Meta app; digits only."),
    )
    meta_business_account_id = forms.CharField(
        label=_("WhatsApp business account ID"),
        max_length=30,
        help_text=_("On the same page; needed to sync your templates."),
    )
    sender = forms.CharField(
        label=_("Display phone number (optional)"),
        max_length=40,
        required=False,
        help_text=_("The number customers see, e.g. +14155550123; shown in the channel list."),
    )
    meta_access_token = secret_field(
        _("Access token"),
        help_text=_(
            "A permanent system user token with the whatsapp_business_messaging permission."
        ),
    )
    meta_app_secret = secret_field(
        _("App secret"),
        help_text=_("App settings > Basic. It proves that webhooks really come from Meta."),
    )
    meta_verify_token = forms.CharField(
        label=_("Webhook verify token"),
        max_length=200,
        help_text=_(
            "Any text you choose; paste the same into Meta's webhook settings. "
            "We suggest a random one."
        ),
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )

    def __init__(self, *args, instance: Channel | None = None, **kwargs):
        if instance is None:
            kwargs.setdefault("initial", {}).setdefault("meta_verify_token", new_verify_token())
        super().__init__(*args, instance=instance, **kwargs)
        if instance is not None:
            self.fields["meta_verify_token"].help_text = _(
                "Leave empty to keep the current token (shown with the webhook address)."
            )

    def _meta_id(self, name: str) -> str:
        value = self.cleaned_data[name].strip()
        if not META_ID.fullmatch(value):
            raise forms.ValidationError(_("Meta's IDs are long numbers; copy it without spaces."))
        return value

    def clean_meta_phone_number_id(self):
        return self._meta_id("meta_phone_number_id")

    def clean_meta_business_account_id(self):
        return self._meta_id("meta_business_account_id")

    def clean_sender(self):
        raw = self.cleaned_data["sender"].strip()
        if not raw:
            return ""
        try:
            return normalize_phone(raw)
        except InvalidPhoneNumber as exc:
            raise forms.ValidationError(exc.messages) from exc

    def clean_meta_verify_token(self):
        token = self.cleaned_data["meta_verify_token"].strip()
        if token and (len(token) < 8 or any(ch.isspace() for ch in token)):
            raise forms.ValidationError(
                _("Use at least 8 characters and no spaces, or keep the suggested token.")
            )
        return token


class SandboxChannelForm(ChannelForm):
    kind = Channel.Kind.SANDBOX


FORM_FOR_KIND: dict[str, type[ChannelForm]] = {
    Channel.Kind.TWILIO_WHATSAPP: TwilioChannelForm,
    Channel.Kind.TWILIO_SMS: TwilioSmsChannelForm,
    Channel.Kind.META_WHATSAPP: MetaChannelForm,
    Channel.Kind.SANDBOX: SandboxChannelForm,
}


# --- Opt-out wording ----------------------------------------------------------------------

KEYWORD_FIELDS = {
    "extra_opt_out_keywords": Keyword.OPT_OUT,
    "extra_opt_in_keywords": Keyword.OPT_IN,
    "extra_help_keywords": Keyword.HELP,
}
KEYWORD_MEANING = {
    Keyword.OPT_OUT: _("an opt-out keyword"),
    Keyword.OPT_IN: _("an opt-in keyword"),
    Keyword.HELP: _("a help keyword"),
}
MAX_KEYWORD_LENGTH = 40  # longer messages are never taken as keywords


def built_in_keywords(languages: list[str]) -> dict[Keyword, list[str]]:
    """The keywords that already work: English always, plus the business's languages."""
    words: dict[Keyword, list[str]] = {meaning: [] for meaning in Keyword}
    for language in ["en", *[lang for lang in languages if lang != "en"]]:
        for meaning, items in BUILT_IN.get(language, {}).items():
            words[meaning] += [w for w in items if w not in words[meaning]]
    return words


class MessagingPolicyForm(forms.ModelForm):
    """Extra keywords and replies. A word can mean only one thing: the same word as opt-out
    and opt-in (or as a built-in keyword of another kind) is refused."""

    class Meta:
        model = MessagingPolicy
        fields = [
            "extra_opt_out_keywords",
            "extra_opt_in_keywords",
            "extra_help_keywords",
            "opt_out_reply",
            "opt_in_reply",
            "help_reply",
        ]
        widgets = {name: forms.Textarea(attrs={"rows": 2}) for name in fields}

    def __init__(self, *args, languages: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        self.languages = languages
        for name in ("extra_opt_in_keywords", "extra_help_keywords"):
            self.fields[name].help_text = self.fields["extra_opt_out_keywords"].help_text
        for name in ("opt_out_reply", "opt_in_reply", "help_reply"):
            self.fields[name].widget.attrs["maxlength"] = 1000

    def clean(self):
        cleaned = super().clean()
        built_in = {
            normalise(word): meaning
            for meaning, words in built_in_keywords(self.languages).items()
            for word in words
        }
        seen: dict[str, tuple[Keyword, str]] = {}
        for name, meaning in KEYWORD_FIELDS.items():
            for word in split_extra(cleaned.get(name, "")):
                key = normalise(word)
                if not key:
                    self.add_error(
                        name,
                        _("“%(word)s” has no letters or digits, so no message can match it.")
                        % {"word": word},
                    )
                    continue
                if len(key) > MAX_KEYWORD_LENGTH:
                    self.add_error(
                        name,
                        _("“%(word)s” is too long for a keyword (%(max)s characters at most).")
                        % {"word": word, "max": MAX_KEYWORD_LENGTH},
                    )
                    continue
                other = seen.get(key)
                if other and other[0] != meaning:
                    self.add_error(
                        name,
                        _("“%(word)s” is already %(other)s; a word can mean only one thing.")
                        % {"word": word, "other": KEYWORD_MEANING[other[0]]},
                    )
                    continue
                if built_in.get(key, meaning) != meaning:
                    self.add_error(
                        name,
                        _(
                            "“%(word)s” is already built in as %(other)s; "
                            "a word can mean only one thing."
                        )
                        % {"word": word, "other": KEYWORD_MEANING[built_in[key]]},
                    )
                    continue
                seen.setdefault(key, (meaning, word))
        for name in ("opt_out_reply", "opt_in_reply", "help_reply"):
            if len(cleaned.get(name, "")) > 1000:
                self.add_error(name, _("Keep the reply under 1000 characters."))
        return cleaned
