"""Forms of the bot pages: the profile, knowledge-base documents, the "try it" box."""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from channels_app.bot import knowledge, profiles
from channels_app.bot.models import BotProfile, KnowledgeDocument


class BotProfileForm(forms.ModelForm):
    working_hours_text = forms.CharField(
        label=_("Working hours"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_(
            "One line per rule, in your business's time zone, e.g. “mon-fri 09:00-18:00” and "
            "“sat 10:00-14:00”. Outside them the bot hands over to a person. Empty: always."
        ),
    )
    new_api_key = forms.CharField(
        label=_("API key"),
        required=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "off"}),
        help_text=_(
            "Your own key for the AI provider (stored encrypted, never shown). Empty keeps the "
            "current one."
        ),
    )
    clear_api_key = forms.BooleanField(label=_("Remove the API key"), required=False)
    api_base_url = forms.URLField(
        label=_("API base URL"),
        required=False,
        assume_scheme="https",
        help_text=_("Any OpenAI-compatible server. Empty: the platform's."),
    )

    class Meta:
        model = BotProfile
        fields = [
            "enabled",
            "instructions",
            "tone",
            "languages",
            "greeting",
            "handoff_phrases",
            "handoff_message",
            "max_reply_chars",
            "max_failures",
            "mask_personal_data",
            "model",
            "temperature",
            "api_base_url",
        ]
        widgets = {
            "instructions": forms.Textarea(attrs={"rows": 4}),
            "greeting": forms.Textarea(attrs={"rows": 2}),
            "handoff_phrases": forms.Textarea(attrs={"rows": 3}),
            "handoff_message": forms.Textarea(attrs={"rows": 2}),
        }
        labels = {"max_failures": _("Hand over after this many failed answers")}
        help_texts = {
            "languages": _(
                "Language codes, comma-separated (e.g. “en, es”). Empty: the customer's language."
            ),
            "handoff_phrases": _(
                "One per line: a customer message with one of them goes to a person at once."
            ),
            "model": _("Empty: the platform's default model."),
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not self.is_bound:
            self.initial["working_hours_text"] = profiles.format_working_hours(
                self.instance.working_hours or {}
            )

    def clean_working_hours_text(self):
        return profiles.parse_working_hours(self.cleaned_data["working_hours_text"])

    def clean_max_failures(self):
        value = self.cleaned_data["max_failures"]
        if not 1 <= value <= 5:
            raise ValidationError(_("Choose between 1 and 5."))
        return value

    def changes(self) -> dict:
        """Keyword arguments for `profiles.update_profile`."""
        values = {name: self.cleaned_data[name] for name in self.Meta.fields}
        values["working_hours"] = self.cleaned_data["working_hours_text"]
        if self.cleaned_data.get("clear_api_key"):
            values["api_key"] = ""
        elif self.cleaned_data.get("new_api_key"):
            values["api_key"] = self.cleaned_data["new_api_key"].strip()
        return values


class DocumentForm(forms.Form):
    title = forms.CharField(label=_("Title"), max_length=200)
    kind = forms.ChoiceField(
        label=_("Kind"),
        choices=[
            (KnowledgeDocument.Kind.TEXT, _("Text")),
            (KnowledgeDocument.Kind.MARKDOWN, _("Markdown")),
            (KnowledgeDocument.Kind.WEB_PAGE, _("Web page text (pasted)")),
        ],
        initial=KnowledgeDocument.Kind.TEXT,
    )
    source = forms.CharField(
        label=_("Page address"),
        required=False,
        max_length=500,
        help_text=_("Where the pasted text comes from (optional)."),
    )
    content = forms.CharField(
        label=_("Text"),
        widget=forms.Textarea(attrs={"rows": 10}),
        max_length=knowledge.MAX_CONTENT_CHARS,
        error_messages={"required": _("The document has no text.")},
    )


class EditDocumentForm(forms.Form):
    title = forms.CharField(label=_("Title"), max_length=200)
    content = forms.CharField(
        label=_("Text"),
        widget=forms.Textarea(attrs={"rows": 14}),
        max_length=knowledge.MAX_CONTENT_CHARS,
        error_messages={"required": _("The document has no text.")},
    )


class UploadForm(forms.Form):
    title = forms.CharField(
        label=_("Title"), max_length=200, required=False, help_text=_("Empty: the file name.")
    )
    file = forms.FileField(
        label=_("File"),
        help_text=_("A .txt, .md, .pdf or .docx file of up to 10 MB."),
        widget=forms.ClearableFileInput(attrs={"accept": ".txt,.md,.markdown,.pdf,.docx"}),
    )

    def clean(self):
        cleaned = super().clean()
        upload = cleaned.get("file")
        if upload is None:
            return cleaned
        if upload.size > knowledge.MAX_UPLOAD_BYTES:
            raise ValidationError({"file": _("The file is larger than 10 MB.")})
        try:
            cleaned["extracted"] = knowledge.extract_upload(name=upload.name, data=upload.read())
        except ValidationError as exc:
            raise ValidationError({"file": exc.messages}) from exc
        cleaned["title"] = (cleaned.get("title") or "").strip() or upload.name[:200]
        return cleaned


class TryForm(forms.Form):
    question = forms.CharField(
        label=_("Ask what a customer would ask"),
        max_length=1000,
        error_messages={"required": _("Write a question first.")},
    )
