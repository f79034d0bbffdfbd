"""A member's private calendar feed (`.ics`), addressed by a secret token, read without a
session by calendar apps. A reset token, an unknown one or a member who left: 404."""

from __future__ import annotations

import datetime as dt

from django.http import Http404, HttpResponse
from django.utils import timezone
from django.views.decorators.http import require_safe

from crm.models import Appointment, CalendarFeed
from crm.selectors.calendar import ics
from tenants.context import platform_access, tenant_context
from tenants.models import Membership

# How far back the feed reaches (calendar apps keep what they already have).
FEED_HISTORY = dt.timedelta(days=90)


@require_safe
def calendar_feed(request, token):
    with platform_access():
        feed = CalendarFeed.unscoped.select_related("tenant", "user").filter(token=token).first()
    if feed is None or not Membership.objects.filter(tenant=feed.tenant, user=feed.user).exists():
        raise Http404("No such calendar.")
    with tenant_context(feed.tenant):
        appointments = list(
            Appointment.objects.filter(
                owner=feed.user, ends_at__gte=timezone.now() - FEED_HISTORY
            ).select_related("contact")
        )
        body = ics(appointments, name=feed.tenant.name, host=feed.tenant.slug)
    response = HttpResponse(body, content_type="text/calendar; charset=utf-8")
    response["Cache-Control"] = "private, max-age=300"
    return response
