"""The one permission helper every tenant view uses.

`@tenant_view(role)` requires an active tenant (set by the middleware from the URL, so a
non-member already got 404) and at least the given role; it answers 403 otherwise. The URL
isolation test checks that every view under /app/<tenant-slug>/ carries it.
"""

from __future__ import annotations

import functools

from django.core.exceptions import PermissionDenied
from django.http import Http404

from tenants.models import Membership, Role


def has_role(membership: Membership | None, minimum: str) -> bool:
    return membership is not None and membership.has_role(minimum)


def tenant_view(role: str = Role.AGENT, *, allow_locked: bool = False):
    """`allow_locked`: the view still works while the business is scheduled for deletion (the
    page that restores it); every other view then answers with the "deletion scheduled" page."""

    def decorator(view):
        @functools.wraps(view)
        def wrapper(request, *args, **kwargs):
            membership = getattr(request, "membership", None)
            if membership is None:
                raise Http404("No such business.")
            if request.tenant.is_locked and not (allow_locked and membership.has_role(role)):
                from privacy.views.deletion import deletion_scheduled

                return deletion_scheduled(request)
            if not membership.has_role(role):
                raise PermissionDenied("Your role does not allow this.")
            return view(request, *args, **kwargs)

        wrapper.tenant_role = role
        return wrapper

    return decorator
