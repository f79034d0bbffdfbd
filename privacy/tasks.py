"""Celery tasks of the privacy centre: thin, tenant id first, safe to run twice."""

from __future__ import annotations

from celery import shared_task

from tenants.context import for_tenant


@shared_task(acks_late=True)
def purge_expired() -> int:
    """Beat (daily): one retention purge per business; returns how many were enqueued."""
    from tenants.models import Tenant

    tenant_ids = list(
        Tenant.objects.filter(status=Tenant.Status.ACTIVE).values_list("pk", flat=True)
    )
    for tenant_id in tenant_ids:
        purge_tenant_expired.delay(tenant_id)
    return len(tenant_ids)


@shared_task(acks_late=True)
@for_tenant
def purge_tenant_expired(tenant_id: int) -> int:
    """The retention purge of one business (interrupted: the next run continues)."""
    from privacy import retention

    return retention.purge_expired().total


@shared_task(acks_late=True)
def purge_deleted_tenants() -> int:
    """Beat (daily): remove every business whose deletion grace period is over."""
    from privacy import tenant_deletion

    return tenant_deletion.purge_due_tenants()
