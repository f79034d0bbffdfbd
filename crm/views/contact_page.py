"""The contact page."""

from __future__ import annotations

from django.shortcuts import get_object_or_404, render

from crm.models import Contact
from privacy import access_log
from tenants.models import Role
from tenants.permissions import tenant_view


@tenant_view(Role.AGENT)
def contact_detail(request, contact_id):
    contact = get_object_or_404(Contact, pk=contact_id)
    access_log.record_access(request=request, action=access_log.Action.VIEWED_CONTACT, obj=contact)
    return render(request, "crm/contact_page/detail.html", {"contact": contact})
