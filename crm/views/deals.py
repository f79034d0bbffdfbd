"""Pipelines, the deals board and deal pages."""

from __future__ import annotations

from django.shortcuts import get_object_or_404, render

from crm.models import Deal
from tenants.models import Role
from tenants.permissions import tenant_view


@tenant_view(Role.AGENT)
def deal_detail(request, deal_id):
    deal = get_object_or_404(Deal.objects.select_related("stage", "pipeline"), pk=deal_id)
    return render(request, "crm/deals/detail.html", {"deal": deal})
