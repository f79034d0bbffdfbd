"""Tasks ("My tasks": overdue, due today, upcoming, done) and note edits."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from crm.forms import NoteForm, TaskForm, attach_errors
from crm.models import Note, Task
from crm.selectors import tasks as selectors
from crm.services import notes as note_services
from crm.services import tasks as services
from tenants.models import Role
from tenants.permissions import tenant_view


def _back(request, fallback: str, **kwargs):
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return redirect(target)
    return redirect(fallback, tenant_slug=request.tenant.slug, **kwargs)


def _record_url(request, task_or_note) -> str | None:
    if task_or_note.contact_id:
        return redirect(
            "crm:contact", tenant_slug=request.tenant.slug, contact_id=task_or_note.contact_id
        )
    company_id = getattr(task_or_note, "company_id", None)
    if company_id:
        return redirect("crm:company", tenant_slug=request.tenant.slug, company_id=company_id)
    if task_or_note.deal_id:
        return redirect("crm:deal", tenant_slug=request.tenant.slug, deal_id=task_or_note.deal_id)
    return None


@require_GET
@tenant_view(Role.AGENT)
def my_tasks(request):
    everyone = request.GET.get("who") == "all"
    with timezone.override(request.tenant.zone):
        return render(
            request,
            "crm/tasks/list.html",
            {
                "groups": selectors.grouped(
                    assignee=request.user, everyone=everyone, zone=request.tenant.zone
                ),
                "everyone": everyone,
                "form": TaskForm(tenant=request.tenant, initial={"assignee": str(request.user.pk)}),
            },
        )


@require_POST
@tenant_view(Role.AGENT)
def task_new(request):
    with timezone.override(request.tenant.zone):
        form = TaskForm(request.POST, tenant=request.tenant)
        if form.is_valid():
            try:
                services.create_task(created_by=request.user, **form.cleaned_data)
                messages.success(request, _("Task added."))
                return redirect("crm:tasks", tenant_slug=request.tenant.slug)
            except ValidationError as exc:
                attach_errors(form, exc)
        return render(request, "crm/tasks/form.html", {"form": form, "task": None}, status=400)


@tenant_view(Role.AGENT)
def task_edit(request, task_id: int):
    task = get_object_or_404(Task.objects.select_related("contact", "deal"), pk=task_id)
    with timezone.override(request.tenant.zone):
        if request.method == "POST":
            form = TaskForm(request.POST, tenant=request.tenant)
            if form.is_valid():
                try:
                    services.update_task(task=task, **form.cleaned_data)
                    messages.success(request, _("Task saved."))
                    return _back(request, "crm:tasks")
                except ValidationError as exc:
                    attach_errors(form, exc)
            status = 400
        else:
            form = TaskForm(
                tenant=request.tenant,
                initial={
                    "title": task.title,
                    "description": task.description,
                    "due_at": timezone.localtime(task.due_at) if task.due_at else None,
                    "assignee": str(task.assignee_id or ""),
                },
            )
            status = 200
        return render(request, "crm/tasks/form.html", {"form": form, "task": task}, status=status)


@require_POST
@tenant_view(Role.AGENT)
def task_complete(request, task_id: int):
    task = get_object_or_404(Task, pk=task_id)
    services.complete_task(task=task)
    messages.success(request, _("“%(title)s” is done.") % {"title": task.title})
    return _back(request, "crm:tasks")


@require_POST
@tenant_view(Role.AGENT)
def task_reopen(request, task_id: int):
    task = get_object_or_404(Task, pk=task_id)
    services.reopen_task(task=task)
    messages.success(request, _("“%(title)s” is open again.") % {"title": task.title})
    return _back(request, "crm:tasks")


@require_POST
@tenant_view(Role.AGENT)
def task_delete(request, task_id: int):
    task = get_object_or_404(Task, pk=task_id)
    services.delete_task(task=task)
    messages.success(request, _("Task deleted."))
    return _back(request, "crm:tasks")


@tenant_view(Role.AGENT)
def note_edit(request, note_id: int):
    note = get_object_or_404(Note, pk=note_id)
    form = NoteForm(request.POST or None, initial={"body": note.body})
    if request.method == "POST" and form.is_valid():
        try:
            note_services.edit_note(note=note, body=form.cleaned_data["body"])
            messages.success(request, _("Note saved."))
            return _record_url(request, note) or redirect(
                "crm:tasks", tenant_slug=request.tenant.slug
            )
        except ValidationError as exc:
            attach_errors(form, exc)
    return render(
        request,
        "crm/tasks/note_form.html",
        {"form": form, "note": note},
        status=400 if request.method == "POST" else 200,
    )


@require_POST
@tenant_view(Role.AGENT)
def note_delete(request, note_id: int):
    note = get_object_or_404(Note, pk=note_id)
    back = _record_url(request, note)
    note_services.delete_note(note=note)
    messages.success(request, _("Note deleted."))
    return back or redirect("crm:tasks", tenant_slug=request.tenant.slug)
