"""The appointment form. Times are entered in the business's time zone (the view activates it),
so a time that does not exist or happens twice on a daylight-saving change is a form error."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from channels_app.models import Channel
from crm.deal_forms import MemberChoiceField
from crm.models import Contact
from crm.selectors.deals import members

REMINDER_CHOICES = [
    (0, _("No reminder")),
    (30, _("30 minutes before")),
    (60, _("1 hour before")),
    (120, _("2 hours before")),
    (24 * 60, _("1 day before")),
    (2 * 24 * 60, _("2 days before")),
    (7 * 24 * 60, _("1 week before")),
]
LOCAL_FORMAT = "%Y-%m-%dT%H:%M"
# Contacts listed in the picker before the user searches (any contact id is accepted).
CONTACT_OPTIONS = 200


class ContactChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj):
        if obj.name and obj.phone:
            return f"{obj.name} ({obj.phone})"
        return obj.name or obj.phone or obj.email or f"#{obj.pk}"


class LocalDateTimeInput(forms.DateTimeInput):
    input_type = "datetime-local"

    def __init__(self, **kwargs):
        super().__init__(format=LOCAL_FORMAT, **kwargs)


class AppointmentForm(forms.Form):
    title = forms.CharField(label=_("Title"), max_length=200)
    contact = ContactChoiceField(label=_("With (contact)"), queryset=None)
    starts_at = forms.DateTimeField(
        label=_("Starts"),
        input_formats=[LOCAL_FORMAT, "%Y-%m-%d %H:%M"],
        widget=LocalDateTimeInput(),
    )
    ends_at = forms.DateTimeField(
        label=_("Ends"), input_formats=[LOCAL_FORMAT, "%Y-%m-%d %H:%M"], widget=LocalDateTimeInput()
    )
    location = forms.CharField(label=_("Location"), max_length=300, required=False)
    link = forms.URLField(label=_("Meeting link"), required=False, assume_scheme="https")
    owner = MemberChoiceField(label=_("With (team member)"), queryset=None, required=False)
    notes = forms.CharField(
        label=_("Notes"), required=False, widget=forms.Textarea(attrs={"rows": 3})
    )
    reminder_minutes_before = forms.TypedChoiceField(
        label=_("Reminder by message"), choices=REMINDER_CHOICES, coerce=int, initial=24 * 60
    )
    reminder_channel = forms.ModelChoiceField(
        label=_("Remind on"),
        queryset=None,
        required=False,
        empty_label=_("The contact's latest conversation"),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        from tenants.models import User

        contacts = Contact.objects.order_by("name", "id")
        self.fields["contact"].queryset = contacts
        self.fields["contact"].widget.choices = self._contact_options(contacts)
        self.fields["owner"].queryset = User.objects.filter(
            pk__in=[user.pk for user in members()]
        ).order_by("full_name", "email")
        self.fields["reminder_channel"].queryset = Channel.objects.filter(is_active=True)

    def _contact_options(self, contacts) -> list[tuple]:
        field = self.fields["contact"]
        chosen = self.data.get("contact") if self.is_bound else None
        if chosen is None:
            initial = self.initial.get("contact")
            chosen = getattr(initial, "pk", initial)
        shown = list(contacts[:CONTACT_OPTIONS])
        if str(chosen or "").isdigit() and all(str(c.pk) != str(chosen) for c in shown):
            shown = list(contacts.filter(pk=int(chosen))) + shown
        return [("", field.empty_label)] + [(c.pk, field.label_from_instance(c)) for c in shown]

    def clean(self):
        cleaned = super().clean()
        starts_at, ends_at = cleaned.get("starts_at"), cleaned.get("ends_at")
        if starts_at and ends_at and ends_at <= starts_at:
            self.add_error("ends_at", _("The appointment must end after it starts."))
        return cleaned
