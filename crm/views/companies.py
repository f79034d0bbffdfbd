"""Companies: list with search, create and edit, a page with their contacts, deals and notes."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from crm.forms import CompanyForm, NoteForm, attach_errors
from crm.models import Company
from crm.selectors.companies import companies_matching
from crm.services import companies as services
from crm.services import notes as note_services
from tenants.models import Role
from tenants.permissions import tenant_view

PAGE_SIZE = 50


@require_GET
@tenant_view(Role.AGENT)
def company_list(request):
    q = request.GET.get("q", "").strip()[:200]
    page = Paginator(companies_matching(q=q), PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "crm/companies/list.html", {"page": page, "q": q})


def _fields(form: CompanyForm) -> dict:
    return {name: form.cleaned_data[name] for name in ("domain", "phone", "address", "owner")}


@tenant_view(Role.AGENT)
def company_new(request):
    form = CompanyForm(request.POST or None, tenant=request.tenant)
    if request.method == "POST" and form.is_valid():
        try:
            company = services.create_company(name=form.cleaned_data["name"], **_fields(form))
            messages.success(request, _("Company saved."))
            return redirect("crm:company", tenant_slug=request.tenant.slug, company_id=company.pk)
        except ValidationError as exc:
            attach_errors(form, exc)
    return render(
        request,
        "crm/companies/form.html",
        {"form": form, "company": None},
        status=400 if request.method == "POST" else 200,
    )


@tenant_view(Role.AGENT)
def company_edit(request, company_id: int):
    company = get_object_or_404(Company, pk=company_id)
    initial = {
        "name": company.name,
        "domain": company.domain,
        "phone": company.phone,
        "address": company.address,
        "owner": str(company.owner_id or ""),
    }
    form = CompanyForm(request.POST or None, initial=initial, tenant=request.tenant)
    if request.method == "POST" and form.is_valid():
        try:
            services.update_company(
                company=company, name=form.cleaned_data["name"], **_fields(form)
            )
            messages.success(request, _("Company saved."))
            return redirect("crm:company", tenant_slug=request.tenant.slug, company_id=company.pk)
        except ValidationError as exc:
            attach_errors(form, exc)
    return render(
        request,
        "crm/companies/form.html",
        {"form": form, "company": company},
        status=400 if request.method == "POST" else 200,
    )


def _company_page(request, company: Company, *, note_form=None, status=200):
    with timezone.override(request.tenant.zone):
        return render(
            request,
            "crm/companies/detail.html",
            {
                "company": company,
                "contacts": list(
                    company.contacts.select_related("owner").order_by("name", "id")[:200]
                ),
                "deals": list(company.deals.select_related("stage", "pipeline", "contact")),
                "notes": list(company.notes.select_related("author")),
                "note_form": note_form or NoteForm(),
            },
            status=status,
        )


@require_GET
@tenant_view(Role.AGENT)
def company_detail(request, company_id: int):
    company = get_object_or_404(Company.objects.select_related("owner"), pk=company_id)
    return _company_page(request, company)


@require_POST
@tenant_view(Role.AGENT)
def company_note_add(request, company_id: int):
    company = get_object_or_404(Company, pk=company_id)
    form = NoteForm(request.POST)
    if form.is_valid():
        try:
            note_services.add_note(
                body=form.cleaned_data["body"], author=request.user, company=company
            )
            messages.success(request, _("Note added."))
            return redirect("crm:company", tenant_slug=request.tenant.slug, company_id=company.pk)
        except ValidationError as exc:
            attach_errors(form, exc)
    return _company_page(request, company, note_form=form, status=400)


@require_POST
@tenant_view(Role.ADMIN)
def company_delete(request, company_id: int):
    company = get_object_or_404(Company, pk=company_id)
    services.delete_company(company=company)
    messages.success(request, _("%(name)s was deleted.") % {"name": company.name})
    return redirect("crm:companies", tenant_slug=request.tenant.slug)
