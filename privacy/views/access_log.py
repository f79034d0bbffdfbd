"""The access log page (owners): filter, page back in time, export as CSV."""

from __future__ import annotations

import csv
import datetime

from django import forms
from django.db.models import Q
from django.http import StreamingHttpResponse
from django.shortcuts import render
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET

from privacy import access_log, security
from privacy.models import AccessLogEntry
from salesos.csv_safety import safe_cell as _safe
from tenants import selectors as tenant_selectors
from tenants.context import tenant_context
from tenants.models import Role
from tenants.permissions import tenant_view

PAGE_SIZE = 50
EXPORT_BATCH = 2000


class AccessLogFilterForm(forms.Form):
    actor = forms.TypedChoiceField(
        label=gettext_lazy("Who"), required=False, coerce=int, empty_value=None
    )
    action = forms.ChoiceField(label=gettext_lazy("What"), required=False)
    subject = forms.IntegerField(label=gettext_lazy("Contact id"), required=False, min_value=1)
    since = forms.DateField(
        label=gettext_lazy("From"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    until = forms.DateField(
        label=gettext_lazy("To"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )

    def __init__(self, *args, tenant, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["actor"].choices = [("", _("Anyone"))] + [
            (membership.user_id, membership.user.email)
            for membership in tenant_selectors.members_of(tenant=tenant)
        ]
        self.fields["action"].choices = [("", _("Anything")), *AccessLogEntry.Action.choices]

    def clean(self):
        data = super().clean()
        if data.get("since") and data.get("until") and data["until"] < data["since"]:
            raise forms.ValidationError(_("The end date is before the start date."))
        return data

    def to_filter(self) -> access_log.AccessLogFilter:
        data = self.cleaned_data if self.is_valid() else {}
        return access_log.AccessLogFilter(
            actor_id=data.get("actor"),
            action=data.get("action") or "",
            subject_id=data.get("subject"),
            since=data.get("since"),
            until=data.get("until"),
        )


@require_GET
@tenant_view(Role.OWNER)
def access_log_page(request):
    form = AccessLogFilterForm(request.GET or None, tenant=request.tenant)
    queryset = access_log.entries(form.to_filter(), zone=request.tenant.zone)
    # Keyset paging: "older" carries the last row's (created_at, id).
    try:
        before_time = parse_datetime(request.GET.get("before_time", ""))
    except ValueError:  # well-formed but impossible ("2024-13-01T00:00"): the first page
        before_time = None
    before_id = request.GET.get("before_id", "")
    if before_time and before_id.isdigit():
        queryset = queryset.filter(
            Q(created_at__lt=before_time) | Q(created_at=before_time, id__lt=int(before_id))
        )
    rows = list(queryset.select_related("actor")[: PAGE_SIZE + 1])
    older = None
    if len(rows) > PAGE_SIZE:
        rows = rows[:PAGE_SIZE]
        query = request.GET.copy()
        query["before_time"] = rows[-1].created_at.isoformat()
        query["before_id"] = str(rows[-1].pk)
        older = query.urlencode()
    export_query = request.GET.copy()
    for key in ("before_time", "before_id"):
        export_query.pop(key, None)
    return render(
        request,
        "privacy/access_log.html",
        {
            "form": form,
            "entries": rows,
            "older": older,
            "export_query": export_query.urlencode(),
        },
    )


@require_GET
@tenant_view(Role.OWNER)
def access_log_export(request):
    form = AccessLogFilterForm(request.GET or None, tenant=request.tenant)
    filters = form.to_filter()
    tenant = request.tenant
    access_log.record_access(
        request=request,
        action=AccessLogEntry.Action.EXPORTED_ACCESS_LOG,
        detail=_("filter: %(query)s") % {"query": request.GET.urlencode() or _("none")},
    )
    security.note_export(
        rows=access_log.entries(filters, zone=tenant.zone).count(),
        what=_("access log export"),
        user=request.user,
        ip_address=access_log.client_ip(request),
    )

    class Echo:
        def write(self, value):
            return value

    def rows():
        writer = csv.writer(Echo())
        yield "\ufeff"
        yield writer.writerow(
            ["time", "who", "action", "object", "contact_id", "detail", "ip", "user_agent"]
        )
        # The tenant is deactivated once the view returns; the generator runs later.
        with tenant_context(tenant):
            cursor: tuple[datetime.datetime, int] | None = None
            while True:
                batch = access_log.entries(filters, zone=tenant.zone)
                if cursor:
                    batch = batch.filter(
                        Q(created_at__lt=cursor[0]) | Q(created_at=cursor[0], id__lt=cursor[1])
                    )
                batch = list(batch[:EXPORT_BATCH])
                if not batch:
                    return
                for entry in batch:
                    yield writer.writerow(
                        [
                            access_log.local(entry.created_at, tenant.zone),
                            _safe(entry.actor_label),
                            entry.get_action_display(),
                            f"{entry.object_type}:{entry.object_id}" if entry.object_id else "",
                            entry.subject_id or "",
                            _safe(entry.detail),
                            entry.ip_address or "",
                            _safe(entry.user_agent),
                        ]
                    )
                cursor = (batch[-1].created_at, batch[-1].pk)

    response = StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="access-log.csv"'
    return response
