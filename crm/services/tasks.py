"""Tasks: a due date in the business's time zone, an assignee among its members."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from crm.models import Task
from crm.services.contacts import touch_activity
from tenants.context import require_current_tenant
from tenants.models import Membership


def _check(*, title: str, assignee, contact, deal) -> str:
    title = (title or "").strip()[:200]
    if not title:
        raise ValidationError({"title": _("Give the task a title.")})
    tenant = require_current_tenant()
    if (
        assignee is not None
        and not Membership.objects.filter(tenant=tenant, user=assignee).exists()
    ):
        raise ValidationError({"assignee": _("The assignee must be a member of this business.")})
    for linked in (contact, deal):
        if linked is not None and linked.tenant_id != tenant.pk:
            raise ValidationError(_("That record belongs to another business."))
    return title


@transaction.atomic
def create_task(
    *,
    title: str,
    created_by,
    description: str = "",
    due_at=None,
    assignee=None,
    contact=None,
    deal=None,
) -> Task:
    title = _check(title=title, assignee=assignee, contact=contact, deal=deal)
    if contact is None and deal is not None:
        contact = deal.contact
    task = Task.objects.create(
        title=title,
        description=description,
        due_at=due_at,
        assignee=assignee,
        contact=contact,
        deal=deal,
        created_by=created_by,
    )
    if contact is not None:
        touch_activity(contact_id=contact.pk, at=task.created_at)
    return task


@transaction.atomic
def update_task(*, task: Task, title: str, description: str = "", due_at=None, assignee=None):
    task.title = _check(title=title, assignee=assignee, contact=task.contact, deal=task.deal)
    task.description = description
    task.due_at = due_at
    task.assignee = assignee
    task.save(update_fields=["title", "description", "due_at", "assignee"])
    return task


@transaction.atomic
def complete_task(*, task: Task) -> Task:
    """Done (again is a no-op: the first completion time stays)."""
    if task.completed_at is None:
        task.completed_at = timezone.now()
        task.save(update_fields=["completed_at"])
        if task.contact_id:
            touch_activity(contact_id=task.contact_id, at=task.completed_at)
    return task


@transaction.atomic
def reopen_task(*, task: Task) -> Task:
    if task.completed_at is not None:
        task.completed_at = None
        task.save(update_fields=["completed_at"])
    return task


@transaction.atomic
def delete_task(*, task: Task) -> None:
    task.delete()
