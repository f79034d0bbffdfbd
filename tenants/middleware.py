"""Resolves `/app/<tenant-slug>/…`, checks membership, and activates the tenant for the request."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.http import Http404

from tenants import context
from tenants.selectors import membership_for


class TenantMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.tenant = None
        request.membership = None
        try:
            return self.get_response(request)
        finally:
            # Pooled connections and reused threads must not carry a tenant into the next request.
            context.clear()

    def process_view(self, request, view_func, view_args, view_kwargs):
        if request.path.startswith("/admin/") and request.user.is_authenticated:
            if request.user.is_active and request.user.is_staff:
                context.grant_platform_access()
            return None

        slug = view_kwargs.pop("tenant_slug", None)
        if slug is None:
            return None
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path(), settings.LOGIN_URL)
        membership = membership_for(user=request.user, tenant_slug=slug)
        if membership is None:
            # 404, not 403: a non-member learns nothing, not even that the business exists.
            raise Http404("No such business.")
        request.tenant = membership.tenant
        request.membership = membership
        context.activate(membership.tenant)
        return None
