"""`{% data_requests_summary %}`: open and overdue data requests for the privacy centre;
`{% data_request_kinds as kinds %}`: the kinds, for the inbox's one-click form."""

from django import template

from privacy import dsr
from privacy.models import DataRequest
from tenants.context import get_current_tenant

register = template.Library()


@register.inclusion_tag("privacy/requests/_centre_summary.html")
def data_requests_summary():
    tenant = get_current_tenant()
    summary = dsr.summary(tenant=tenant) if tenant is not None else None
    return {"tenant": tenant, "summary": summary}


@register.simple_tag
def data_request_kinds():
    return DataRequest.Kind.choices
