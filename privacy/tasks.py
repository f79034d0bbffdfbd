"""Celery tasks of the privacy app: thin, tenant id first, safe to run twice."""

from __future__ import annotations

from celery import shared_task

from privacy import dsr
from tenants.context import for_tenant, tenant_context


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


# Another request of the business is running: wait this long, as often as it takes (the
# sweep of stalled requests is the backstop if this message is lost).
BUSY_RETRY_SECONDS = 15


@shared_task(bind=True, acks_late=True, max_retries=None)
def run_data_request(self, tenant_id: int, request_id: int) -> str | None:
    try:
        return _run_data_request(tenant_id, request_id)
    except dsr.Busy:
        if self.request.is_eager:
            raise  # no broker to hold a delayed retry; the sweep queues it again
        raise self.retry(countdown=BUSY_RETRY_SECONDS) from None


@for_tenant
def _run_data_request(tenant_id: int, request_id: int) -> str | None:
    data_request = dsr.carry_out(request_id=request_id)
    return data_request.status if data_request is not None else None


@shared_task(acks_late=True)
def requeue_stalled_requests() -> int:
    """Beat: queue again the data requests whose queue message or worker was lost."""
    queued = 0
    for tenant in _tenants(active_only=True):
        with tenant_context(tenant):
            queued += dsr.requeue_stalled()
    return queued


@shared_task(acks_late=True)
@for_tenant(allow_locked=True)
def prepare_business_export(tenant_id: int, export_id: int) -> str | None:
    """An owner's export of everything; it runs during the deletion grace period too."""
    from privacy import tenant_deletion

    export = tenant_deletion.prepare_export(export_id=export_id)
    return export.status if export is not None else None


def _tenants(*, active_only: bool):
    from tenants.models import Tenant

    tenants = Tenant.objects.order_by("pk")
    if active_only:
        tenants = tenants.filter(status=Tenant.Status.ACTIVE)
    return list(tenants)


@shared_task(acks_late=True)
def expire_exports() -> int:
    """Beat: delete expired export archives (data requests' and whole-business exports),
    business by business (locked ones too)."""
    from privacy import tenant_deletion

    removed = 0
    for tenant in _tenants(active_only=False):
        with tenant_context(tenant):
            removed += dsr.expire_exports()
            removed += tenant_deletion.expire_exports()
    return removed


@shared_task(acks_late=True)
def notify_overdue_requests() -> int:
    """Beat: e-mail owners once about each overdue data request."""
    sent = 0
    for tenant in _tenants(active_only=True):
        with tenant_context(tenant):
            sent += dsr.notify_overdue(tenant=tenant)
    return sent


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
