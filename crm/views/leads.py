"""Lead sources (owners and admins): add a Meta Lead Ads or Google Ads source, see the webhook
address and what to paste, switch it on or off, its counters and recent leads. The lead
webhooks themselves are in `crm.views.lead_hooks` (no login)."""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from crm.forms_leads import LeadSourceForm
from crm.models import LeadSource
from crm.services import leads as services
from tenants.models import Role
from tenants.permissions import tenant_view

RECENT_LEADS = 25


def _kind(request) -> str:
    kind = request.POST.get("kind") or request.GET.get("kind") or ""
    return kind if kind in LeadSource.Kind.values else ""


def _to_source(request, source):
    return redirect("crm:lead_source", tenant_slug=request.tenant.slug, lead_source_id=source.pk)


@tenant_view(Role.ADMIN)
def lead_sources(request):
    return render(
        request,
        "crm/leads/index.html",
        {"sources": list(LeadSource.objects.all()), "kinds": LeadSource.Kind.choices},
    )


@tenant_view(Role.ADMIN)
def lead_source_add(request):
    kind = _kind(request)
    if not kind:
        return redirect("crm:lead_sources", tenant_slug=request.tenant.slug)
    form = LeadSourceForm(tenant=request.tenant, kind=kind)
    if request.method == "POST":
        form = LeadSourceForm(request.POST, tenant=request.tenant, kind=kind)
        if form.is_valid():
            source = form.save()
            messages.success(request, _("Lead source added. Paste its webhook address below."))
            return _to_source(request, source)
    return render(
        request,
        "crm/leads/edit.html",
        {"form": form, "kind": kind, "kind_label": LeadSource.Kind(kind).label, "source": None},
        status=400 if form.errors else 200,
    )


@tenant_view(Role.ADMIN)
def lead_source(request, lead_source_id):
    source = get_object_or_404(LeadSource, pk=lead_source_id)
    form = LeadSourceForm(instance=source, tenant=request.tenant, kind=source.kind)
    if request.method == "POST":
        form = LeadSourceForm(
            request.POST, instance=source, tenant=request.tenant, kind=source.kind
        )
        if form.is_valid():
            form.save()
            messages.success(request, _("Saved."))
            return _to_source(request, source)
    return render(
        request,
        "crm/leads/detail.html",
        {
            "source": source,
            "form": form,
            "kind_label": source.get_kind_display(),
            "webhook_url": request.build_absolute_uri(services.webhook_path(source)),
            "leads": source.leads.select_related("contact")[:RECENT_LEADS],
        },
        status=400 if form.errors else 200,
    )


@tenant_view(Role.ADMIN)
@require_POST
def lead_source_toggle(request, lead_source_id):
    source = get_object_or_404(LeadSource, pk=lead_source_id)
    services.set_enabled(source=source, enabled=not source.enabled)
    if source.enabled:
        messages.success(request, _("The lead source is on: new leads are taken in."))
    else:
        messages.success(request, _("The lead source is off: its webhooks are refused."))
    return _to_source(request, source)
