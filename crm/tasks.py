"""CRM background work. Tasks are thin: tenant id first, activate it, call a service."""

from __future__ import annotations

import logging

from celery import shared_task

from tenants.context import for_tenant

logger = logging.getLogger(__name__)


@shared_task(acks_late=True)
def send_appointment_reminders() -> int:
    """Beat, every minute: send the due appointment reminders of every business, each once."""
    from crm.services import reminders

    sent = 0
    for tenant_id in reminders.tenants_with_due_reminders():
        try:
            sent += send_tenant_reminders(tenant_id)
        except Exception:
            # One business's failure must not hold back the others' reminders.
            logger.exception("appointment reminders failed for tenant %s", tenant_id)
    return sent


@shared_task(acks_late=True)
@for_tenant
def send_tenant_reminders(tenant_id: int) -> int:
    """The due reminders of one business (safe to run twice: each is claimed atomically)."""
    from crm.services import reminders

    return reminders.send_due_reminders()
