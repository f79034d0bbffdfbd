"""Companies: the organisations contacts and deals belong to."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from crm.models import Company
from tenants.context import require_current_tenant
from tenants.models import Membership

COMPANY_FIELDS = ("name", "domain", "phone", "address", "owner")


def _clean(fields: dict) -> dict:
    if "name" in fields:
        fields["name"] = (fields["name"] or "").strip()[:200]
        if not fields["name"]:
            raise ValidationError({"name": _("Give the company a name.")})
    if "domain" in fields:
        domain = (fields["domain"] or "").strip().lower()
        for prefix in ("https://", "http://", "www."):
            domain = domain.removeprefix(prefix)
        fields["domain"] = domain.split("/")[0][:200]
    owner = fields.get("owner")
    if (
        owner is not None
        and not Membership.objects.filter(tenant=require_current_tenant(), user=owner).exists()
    ):
        raise ValidationError({"owner": _("The owner must be a member of this business.")})
    return fields


@transaction.atomic
def create_company(*, name: str, **fields) -> Company:
    unknown = set(fields) - set(COMPANY_FIELDS)
    if unknown:
        raise TypeError(f"not company fields: {sorted(unknown)}")
    return Company.objects.create(**_clean({"name": name, **fields}))


@transaction.atomic
def update_company(*, company: Company, **fields) -> Company:
    unknown = set(fields) - set(COMPANY_FIELDS)
    if unknown:
        raise TypeError(f"not company fields: {sorted(unknown)}")
    for name, value in _clean(fields).items():
        setattr(company, name, value)
    company.save()
    return company


@transaction.atomic
def delete_company(*, company: Company) -> None:
    """Its contacts and deals stay, without a company; its notes go."""
    company.delete()
