"""The contact page: details, consent, one activity timeline; notes and tasks added here.

Every view of it leaves an access-log entry (P12).
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from crm.forms import NoteForm, TaskForm, attach_errors
from crm.models import Contact
from crm.selectors import contacts as contact_selectors
from crm.selectors.timeline import timeline
from crm.services import notes as note_services
from crm.services import tasks as task_services
from privacy.access_log import record_access
from privacy.models import AccessLogEntry, ConsentEvent, ConsentState
from tenants.models import Role
from tenants.permissions import tenant_view


def _consent_grid(contact: Contact) -> list[dict]:
    states = {(s.medium, s.purpose): s for s in ConsentState.objects.filter(contact=contact)}
    labels = {"whatsapp": _("WhatsApp"), "sms": _("SMS")}
    purposes = {"transactional": _("Service messages"), "marketing": _("Marketing")}
    return [
        {
            "medium": labels[medium],
            "cells": [
                {"purpose": purposes[purpose], "state": states.get((medium, purpose))}
                for purpose in contact_selectors.CONSENT_PURPOSES
            ],
        }
        for medium in contact_selectors.CONSENT_MEDIA
    ]


def _page(request, contact: Contact, *, note_form=None, task_form=None, status=200):
    page = timeline(contact, cursor=request.GET.get("before", ""))
    record_access(request=request, action=AccessLogEntry.Action.VIEWED_CONTACT, obj=contact)
    context = {
        "contact": contact,
        "timeline": page,
        "is_tenant_admin": request.membership.has_role(Role.ADMIN),
    }
    with timezone.override(request.tenant.zone):
        if request.headers.get("HX-Request") and request.GET.get("before"):
            return render(request, "crm/contact_page/_timeline_items.html", context)
        context.update(
            {
                "consent_grid": _consent_grid(contact),
                "consent_history": list(
                    ConsentEvent.objects.filter(contact=contact)
                    .select_related("recorded_by", "channel")
                    .order_by("-created_at", "-id")[:50]
                ),
                "attributes": [
                    (a, (contact.attributes or {}).get(a.key, ""))
                    for a in contact_selectors.attribute_definitions()
                ],
                "tags": list(contact.tags.order_by("name")),
                "conversations": list(contact.conversations.select_related("channel")),
                "deals": list(contact.deals.select_related("stage", "pipeline")),
                "open_tasks": list(
                    contact.tasks.filter(completed_at__isnull=True)
                    .select_related("assignee")
                    .order_by("due_at", "id")
                ),
                "note_form": note_form or NoteForm(),
                "task_form": task_form or TaskForm(tenant=request.tenant),
            }
        )
        return render(request, "crm/contact_page/detail.html", context, status=status)


@require_GET
@tenant_view(Role.AGENT)
def contact_detail(request, contact_id):
    contact = get_object_or_404(Contact.objects.select_related("owner", "company"), pk=contact_id)
    return _page(request, contact)


@require_POST
@tenant_view(Role.AGENT)
def contact_note_add(request, contact_id):
    contact = get_object_or_404(Contact, pk=contact_id)
    form = NoteForm(request.POST)
    if form.is_valid():
        try:
            note_services.add_note(
                body=form.cleaned_data["body"], author=request.user, contact=contact
            )
            messages.success(request, _("Note added."))
            return redirect("crm:contact", tenant_slug=request.tenant.slug, contact_id=contact.pk)
        except ValidationError as exc:
            attach_errors(form, exc)
    return _page(request, contact, note_form=form, status=400)


@require_POST
@tenant_view(Role.AGENT)
def contact_task_add(request, contact_id):
    contact = get_object_or_404(Contact, pk=contact_id)
    with timezone.override(request.tenant.zone):
        form = TaskForm(request.POST, tenant=request.tenant)
        valid = form.is_valid()
    if valid:
        try:
            task_services.create_task(
                title=form.cleaned_data["title"],
                description=form.cleaned_data["description"],
                due_at=form.cleaned_data["due_at"],
                assignee=form.cleaned_data["assignee"],
                contact=contact,
                created_by=request.user,
            )
            messages.success(request, _("Task added."))
            return redirect("crm:contact", tenant_slug=request.tenant.slug, contact_id=contact.pk)
        except ValidationError as exc:
            attach_errors(form, exc)
    return _page(request, contact, task_form=form, status=400)
