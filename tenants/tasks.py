"""Celery tasks of the tenants app: thin, tenant id first, safe to run twice."""

from celery import shared_task

from tenants import services
from tenants.context import for_tenant


@shared_task(acks_late=True, autoretry_for=(OSError,), retry_backoff=True, max_retries=5)
@for_tenant
def send_invitation_email(tenant_id: int, invitation_id: int) -> bool:
    return services.send_invitation_email(invitation_id=invitation_id)
