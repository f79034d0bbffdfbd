"""Forms of the pipelines and deals pages. They check input; `crm.services` does the writes."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from crm.currencies import currency_choices
from crm.models import Company, Contact, Pipeline, Stage
from crm.selectors.deals import members


class MemberChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj):
        return obj.get_full_name()


class StageChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj):
        return f"{obj.pipeline.name} · {obj.name}"


class DealForm(forms.Form):
    title = forms.CharField(label=_("Title"), max_length=200)
    pipeline = forms.ModelChoiceField(label=_("Pipeline"), queryset=None)
    stage = StageChoiceField(label=_("Stage"), queryset=None)
    value = forms.DecimalField(
        label=_("Value"), min_value=0, max_digits=14, decimal_places=2, initial=0
    )
    currency = forms.ChoiceField(label=_("Currency"), choices=currency_choices, initial="USD")
    contact = forms.ModelChoiceField(label=_("Contact"), queryset=None, required=False)
    company = forms.ModelChoiceField(label=_("Company"), queryset=None, required=False)
    owner = MemberChoiceField(label=_("Owner"), queryset=None, required=False)
    expected_close_date = forms.DateField(
        label=_("Expected close"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        from tenants.models import User

        self.fields["pipeline"].queryset = Pipeline.objects.order_by("position", "id")
        self.fields["stage"].queryset = Stage.objects.select_related("pipeline").order_by(
            "pipeline__position", "pipeline_id", "position", "id"
        )
        self.fields["contact"].queryset = Contact.objects.order_by("name", "id")
        self.fields["company"].queryset = Company.objects.order_by("name", "id")
        self.fields["owner"].queryset = User.objects.filter(
            pk__in=[user.pk for user in members()]
        ).order_by("full_name", "email")

    def clean(self):
        cleaned = super().clean()
        pipeline, stage = cleaned.get("pipeline"), cleaned.get("stage")
        if pipeline is not None and stage is not None and stage.pipeline_id != pipeline.pk:
            self.add_error(
                "stage",
                _("“%(stage)s” is a stage of “%(other)s”, not of “%(pipeline)s”.")
                % {"stage": stage.name, "other": stage.pipeline.name, "pipeline": pipeline.name},
            )
        return cleaned

    def deal_fields(self) -> dict:
        data = self.cleaned_data
        return {
            name: data[name]
            for name in (
                "title",
                "value",
                "currency",
                "contact",
                "company",
                "owner",
                "expected_close_date",
            )
        }


class PipelineForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=100)


class StageForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=100)
    outcome = forms.ChoiceField(
        label=_("Closes the deal as"),
        choices=[("", _("Open (not closed)")), ("won", _("Won")), ("lost", _("Lost"))],
        required=False,
    )

    def flags(self) -> dict:
        outcome = self.cleaned_data.get("outcome") or ""
        return {"is_won": outcome == "won", "is_lost": outcome == "lost"}
