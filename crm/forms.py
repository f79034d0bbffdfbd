"""Forms of the contact, company, task and note pages. They parse and check the shape of the
input; the rules live in `crm.services` (whose ValidationErrors the views attach here)."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from crm.models import Company, ContactAttribute, LifecycleStage, Tag
from crm.selectors.contacts import CONSENT_MEDIA, CONSENT_PURPOSES, SORT_LABELS
from tenants import selectors as tenant_selectors


def member_choices(tenant, *, empty: str) -> list[tuple[str, str]]:
    return [("", empty)] + [
        (str(m.user_id), m.user.full_name or m.user.email)
        for m in tenant_selectors.members_of(tenant=tenant)
    ]


def member_by_id(tenant, value: str):
    if not value:
        return None
    for membership in tenant_selectors.members_of(tenant=tenant):
        if str(membership.user_id) == str(value):
            return membership.user
    raise ValidationError(_("Choose a member of this business."))


def attach_errors(form: forms.Form, error: ValidationError) -> None:
    """Put a service's ValidationError on the form (by field where it names one)."""
    if hasattr(error, "error_dict"):
        for name, errors in error.error_dict.items():
            form.add_error(name if name in form.fields else None, errors)
    else:
        form.add_error(None, error)


class ContactForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=200, required=False)
    phone = forms.CharField(
        label=_("Phone"),
        max_length=40,
        required=False,
        help_text=_("International format, with the country code: +44 20 7946 0958."),
        widget=forms.TextInput(attrs={"inputmode": "tel", "autocomplete": "off"}),
    )
    email = forms.EmailField(label=_("E-mail"), required=False)
    language = forms.ChoiceField(label=_("Language"), required=False)
    lifecycle_stage = forms.ChoiceField(
        label=_("Lifecycle stage"), choices=LifecycleStage.choices, initial=LifecycleStage.LEAD
    )
    owner = forms.ChoiceField(label=_("Owner"), required=False)
    company = forms.ChoiceField(label=_("Company"), required=False)
    tags = forms.MultipleChoiceField(
        label=_("Tags"), required=False, widget=forms.CheckboxSelectMultiple
    )
    new_tags = forms.CharField(
        label=_("New tags"),
        required=False,
        max_length=500,
        help_text=_("Comma-separated; created for your business."),
    )

    def __init__(self, *args, tenant, **kwargs):
        super().__init__(*args, **kwargs)
        self.tenant = tenant
        self.fields["language"].choices = [("", "—"), *settings.LANGUAGES]
        self.fields["owner"].choices = member_choices(tenant, empty=_("Nobody"))
        self.fields["company"].choices = [("", "—")] + [
            (str(c.pk), c.name) for c in Company.objects.order_by("name")[:500]
        ]
        self.fields["tags"].choices = [(str(t.pk), t.name) for t in Tag.objects.order_by("name")]
        self.attributes = list(ContactAttribute.objects.order_by("position", "label", "id"))
        for attribute in self.attributes:
            self.fields[f"attr_{attribute.key}"] = attribute_field(attribute)

    def clean_owner(self):
        return member_by_id(self.tenant, self.cleaned_data["owner"])

    def clean_company(self):
        value = self.cleaned_data["company"]
        if not value:
            return None
        company = Company.objects.filter(pk=value).first()
        if company is None:
            raise ValidationError(_("No such company."))
        return company

    def clean(self):
        # Every attribute value is checked by kind, whatever else is wrong, so the person
        # sees all the errors at once (the service checks again when saving).
        from crm.services.contacts import clean_attribute_value

        data = super().clean()
        for attribute in self.attributes:
            name = f"attr_{attribute.key}"
            text = str(data.get(name) or "").strip()
            if not text or attribute.kind == ContactAttribute.Kind.CHOICE:
                continue
            try:
                data[name] = clean_attribute_value(definition=attribute, text=text)
            except ValidationError as exc:
                self.add_error(name, exc)
        return data

    def attribute_fields(self):
        return [self[f"attr_{a.key}"] for a in self.attributes]

    def raw_attributes(self) -> dict[str, str]:
        return {
            a.key: str(self.cleaned_data.get(f"attr_{a.key}") or "").strip()
            for a in self.attributes
        }

    def new_tag_names(self) -> list[str]:
        return [part for part in self.cleaned_data.get("new_tags", "").split(",") if part.strip()]


def attribute_field(attribute: ContactAttribute) -> forms.Field:
    """A text input for every kind: the service validates by kind and says what is wrong."""
    if attribute.kind == ContactAttribute.Kind.CHOICE:
        return forms.ChoiceField(
            label=attribute.label,
            required=False,
            choices=[("", "—")] + [(c, c) for c in attribute.choices or []],
        )
    widget = forms.TextInput()
    if attribute.kind == ContactAttribute.Kind.DATE:
        widget = forms.DateInput(attrs={"type": "date"})
    elif attribute.kind == ContactAttribute.Kind.NUMBER:
        widget = forms.TextInput(attrs={"inputmode": "decimal"})
    return forms.CharField(label=attribute.label, required=False, max_length=500, widget=widget)


class ContactFilterForm(forms.Form):
    """The list's filter bar (GET). `ContactFilter.from_params` reads the same parameters."""

    q = forms.CharField(label=_("Search"), required=False)
    tag = forms.MultipleChoiceField(label=_("Tags"), required=False)
    owner = forms.ChoiceField(label=_("Owner"), required=False)
    stage = forms.ChoiceField(label=_("Stage"), required=False)
    attr = forms.ChoiceField(label=_("Attribute"), required=False)
    attr_value = forms.CharField(label=_("Attribute value"), required=False)
    consent_medium = forms.ChoiceField(label=_("Consent on"), required=False)
    consent_purpose = forms.ChoiceField(label=_("for"), required=False)
    consent_state = forms.ChoiceField(label=_("is"), required=False)
    sort = forms.ChoiceField(label=_("Sort"), required=False)

    def __init__(self, *args, tenant, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["tag"].choices = [(str(t.pk), t.name) for t in Tag.objects.order_by("name")]
        self.fields["owner"].choices = [
            *member_choices(tenant, empty=_("Anyone")),
            ("none", _("Nobody")),
        ]
        self.fields["stage"].choices = [("", _("Any stage")), *LifecycleStage.choices]
        self.fields["attr"].choices = [("", "—")] + [
            (a.key, a.label) for a in ContactAttribute.objects.order_by("position", "label")
        ]
        medium_labels = {"whatsapp": _("WhatsApp"), "sms": _("SMS")}
        purpose_labels = {"transactional": _("service messages"), "marketing": _("marketing")}
        self.fields["consent_medium"].choices = [("", "—")] + [
            (m, medium_labels[m]) for m in CONSENT_MEDIA
        ]
        self.fields["consent_purpose"].choices = [("", "—")] + [
            (p, purpose_labels[p]) for p in CONSENT_PURPOSES
        ]
        self.fields["consent_state"].choices = [
            ("", "—"),
            ("granted", _("granted")),
            ("withdrawn", _("withdrawn")),
            ("none", _("never recorded")),
        ]
        self.fields["sort"].choices = list(SORT_LABELS.items())


class SegmentForm(forms.Form):
    name = forms.CharField(label=_("Segment name"), max_length=100)


class AttributeForm(forms.Form):
    label = forms.CharField(label=_("Label"), max_length=100)
    kind = forms.ChoiceField(label=_("Type"), choices=ContactAttribute.Kind.choices)
    choices = forms.CharField(
        label=_("Choices"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("For a choice attribute: one per line."),
    )

    def choice_list(self) -> list[str]:
        return [line.strip() for line in self.cleaned_data.get("choices", "").splitlines()]


class NoteForm(forms.Form):
    body = forms.CharField(
        label=_("Note"), max_length=10_000, widget=forms.Textarea(attrs={"rows": 3})
    )


class TaskForm(forms.Form):
    title = forms.CharField(label=_("Task"), max_length=200)
    due_at = forms.DateTimeField(
        label=_("Due"),
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%d"],
        help_text=_("In your business's time zone."),
    )
    assignee = forms.ChoiceField(label=_("Assignee"), required=False)
    description = forms.CharField(
        label=_("Details"), required=False, widget=forms.Textarea(attrs={"rows": 2})
    )

    def __init__(self, *args, tenant, **kwargs):
        super().__init__(*args, **kwargs)
        self.tenant = tenant
        self.fields["assignee"].choices = member_choices(tenant, empty=_("Nobody"))

    def clean_assignee(self):
        return member_by_id(self.tenant, self.cleaned_data["assignee"])


class CompanyForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=200)
    domain = forms.CharField(label=_("Website domain"), max_length=200, required=False)
    phone = forms.CharField(label=_("Phone"), max_length=20, required=False)
    address = forms.CharField(
        label=_("Address"), required=False, widget=forms.Textarea(attrs={"rows": 2})
    )
    owner = forms.ChoiceField(label=_("Owner"), required=False)

    def __init__(self, *args, tenant, **kwargs):
        super().__init__(*args, **kwargs)
        self.tenant = tenant
        self.fields["owner"].choices = member_choices(tenant, empty=_("Nobody"))

    def clean_owner(self):
        return member_by_id(self.tenant, self.cleaned_data["owner"])
