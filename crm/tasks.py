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


# Meta lead fetch: transient failures retried with backoff (30 s, 60 s, … capped at 30 min).
LEAD_FETCH_MAX_RETRIES = 8


@shared_task(acks_late=True)
@for_tenant
def send_tenant_reminders(tenant_id: int) -> int:
    """The due reminders of one business (safe to run twice: each is claimed atomically)."""
    from crm.services import reminders

    return reminders.send_due_reminders()


@shared_task(acks_late=True)
@for_tenant
def run_contact_import(tenant_id: int, import_id: int) -> str:
    """Run (or resume after a crash) one CSV import; a rerun continues after the last batch."""
    from crm.models import ContactImport
    from crm.services import imports

    contact_import = ContactImport.objects.filter(pk=import_id).first()
    if contact_import is None:
        return "missing"
    try:
        contact_import = imports.run_import(contact_import=contact_import)
    except Exception as exc:
        logger.exception("contact import %s failed", import_id)
        imports.mark_failed(contact_import=contact_import, reason=f"{type(exc).__name__}: {exc}")
        raise
    return contact_import.status


@shared_task(bind=True, acks_late=True, max_retries=LEAD_FETCH_MAX_RETRIES)
def fetch_meta_lead(self, tenant_id: int, lead_id: int) -> str:
    """Read a Meta lead's answers from the Graph API and process it (after the webhook)."""
    return _fetch_meta_lead(tenant_id, lead_id, task=self)


@for_tenant
def _fetch_meta_lead(tenant_id: int, lead_id: int, *, task) -> str:
    from crm.lead_providers import LeadFetchError
    from crm.models import Lead
    from crm.services import leads

    try:
        return leads.fetch_and_process_meta_lead(lead_id=lead_id)
    except LeadFetchError as exc:
        retries = task.request.retries or 0
        if retries >= LEAD_FETCH_MAX_RETRIES:
            lead = Lead.objects.filter(pk=lead_id).first()
            if lead is not None:
                leads.fail_lead(lead=lead, reason=exc.reason)
            return Lead.Status.FAILED
        if task.request.is_eager:
            # No broker to hold a delayed retry (development, tests): try again at once.
            return _retry_eagerly(tenant_id, lead_id, reason=exc.reason)
        raise task.retry(countdown=min(30 * 2**retries, 1800), exc=exc) from None


def _retry_eagerly(tenant_id: int, lead_id: int, *, reason: str) -> str:
    from crm.lead_providers import LeadFetchError
    from crm.models import Lead
    from crm.services import leads

    for _attempt in range(2):
        try:
            return leads.fetch_and_process_meta_lead(lead_id=lead_id)
        except LeadFetchError as exc:
            reason = exc.reason
    lead = Lead.objects.filter(pk=lead_id).first()
    if lead is not None:
        leads.fail_lead(lead=lead, reason=reason)
    return Lead.Status.FAILED
