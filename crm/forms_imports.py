"""Forms of the contact import pages (the checks themselves live in crm.services.imports)."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from crm.models import ConsentAttestation
from crm.services import imports


class UploadForm(forms.Form):
    file = forms.FileField(
        label=_("CSV file"),
        help_text=_(
            "Comma, semicolon or tab separated, with a header line. UTF-8, Windows-1251 and "
            "other encodings are recognised."
        ),
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,.txt,text/csv,text/plain"}),
    )

    def clean_file(self):
        uploaded = self.cleaned_data["file"]
        try:
            imports.inspect_file(uploaded, size=uploaded.size)
        except imports.ImportFileError as exc:
            raise forms.ValidationError(exc.messages) from exc
        return uploaded


def column_field_name(index: int) -> str:
    return f"column_{index}"


class MappingForm(forms.Form):
    consent = forms.ChoiceField(
        label=_("What did these people agree to?"),
        choices=ConsentAttestation.choices,
        widget=forms.RadioSelect,
        help_text=_(
            "You attest this for every imported contact; it is recorded in the consent ledger "
            "with this import as evidence. Marketing includes service messages. A customer's "
            "own opt-out is never overridden."
        ),
    )
    consent_evidence = forms.CharField(
        label=_("How they agreed"),
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_(
            "Required unless you chose “no consent”. For example: “website sign-up form, 2024”."
        ),
    )
    overwrite = forms.BooleanField(
        label=_("Overwrite existing contacts' values with the file's"),
        required=False,
        help_text=_("Unticked, existing contacts only get their blank fields filled and new tags."),
    )
    default_region = forms.CharField(
        label=_("Country of numbers without +country code"),
        required=False,
        max_length=2,
        help_text=_("Two letters, such as GB or RU. Empty: numbers must be international."),
    )

    def __init__(self, *args, contact_import, **kwargs):
        super().__init__(*args, **kwargs)
        self.contact_import = contact_import
        choices = imports.field_choices()
        self.columns = []
        for index, header in enumerate(contact_import.headers):
            name = column_field_name(index)
            self.fields[name] = forms.ChoiceField(
                label=header,
                choices=choices,
                required=False,
                initial=contact_import.mapping.get(header, ""),
            )
            self.columns.append((header, name))
        self.order_fields([name for _header, name in self.columns])
        if contact_import.consent:
            self.fields["consent"].initial = contact_import.consent
        self.fields["consent_evidence"].initial = contact_import.consent_evidence
        self.fields["overwrite"].initial = contact_import.overwrite
        self.fields["default_region"].initial = contact_import.default_region

    def column_fields(self):
        return [self[name] for _header, name in self.columns]

    def mapping(self) -> dict[str, str]:
        return {header: self.cleaned_data.get(name) or "" for header, name in self.columns}
