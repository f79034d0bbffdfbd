"""Which tenant the current request, task or command acts for.

Two walls keep tenants apart, and this module feeds both:

1. Python: the default manager of every `TenantOwned` model filters on the active tenant and
   raises `NoActiveTenant` when there is none, so a forgotten scope is an error, not a leak.
2. PostgreSQL: row-level security policies compare each row's `tenant_id` with the connection
   setting `app.tenant_id`, which is written here whenever the active tenant changes and on
   every new connection. An unset tenant matches no row.

Crossing tenants (platform admin, retention purges, tenant deletion) is explicit: it happens
inside `platform_access()`, which sets `app.platform_access` for the policies and allows the
models' `unscoped` manager to run.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from contextvars import ContextVar
from typing import TYPE_CHECKING

from django.db import connections
from django.db.backends.signals import connection_created
from django.dispatch import receiver

if TYPE_CHECKING:
    from tenants.models import Tenant


logger = logging.getLogger(__name__)


class NoActiveTenant(RuntimeError):
    """A tenant-owned model was queried with no tenant active."""


class PlatformAccessRequired(RuntimeError):
    """The cross-tenant `unscoped` manager was used outside `platform_access()`."""


_active_tenant: ContextVar[Tenant | None] = ContextVar("active_tenant", default=None)
_platform_access: ContextVar[bool] = ContextVar("platform_access", default=False)

TENANT_SETTING = "app.tenant_id"
PLATFORM_SETTING = "app.platform_access"


def get_current_tenant() -> Tenant | None:
    return _active_tenant.get()


def require_current_tenant() -> Tenant:
    tenant = _active_tenant.get()
    if tenant is None:
        raise NoActiveTenant(
            "No tenant is active. Activate one with tenant_context(tenant) "
            "or use the model's `unscoped` manager inside platform_access()."
        )
    return tenant


def has_platform_access() -> bool:
    return _platform_access.get()


def _push_to_database() -> None:
    """Write the active tenant and platform flag into every open PostgreSQL connection."""
    tenant = _active_tenant.get()
    tenant_value = str(tenant.pk) if tenant is not None else ""
    platform_value = "on" if _platform_access.get() else ""
    for connection in connections.all(initialized_only=True):
        if connection.vendor != "postgresql" or connection.connection is None:
            continue
        _write_settings(connection, tenant_value, platform_value)


def _write_settings(connection, tenant_value: str, platform_value: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT set_config(%s, %s, false), set_config(%s, %s, false)",
            [TENANT_SETTING, tenant_value, PLATFORM_SETTING, platform_value],
        )


@receiver(connection_created)
def _apply_to_new_connection(sender, connection, **kwargs):
    # A connection opened after activation (lazily, or after a reconnect) gets the same state.
    if connection.vendor != "postgresql":
        return
    tenant = _active_tenant.get()
    _write_settings(
        connection,
        str(tenant.pk) if tenant is not None else "",
        "on" if _platform_access.get() else "",
    )


def activate(tenant: Tenant | None):
    """Make `tenant` the active one; returns a token for `deactivate`."""
    token = _active_tenant.set(tenant)
    _push_to_database()
    return token


def deactivate(token) -> None:
    _active_tenant.reset(token)
    _push_to_database()


def replace_active_tenant(tenant: Tenant) -> None:
    """Swap the active tenant object for another copy of the same tenant (a fresher row).

    The database already holds this tenant's id, so nothing is written; a different tenant
    is refused (that needs `activate`, which tells the database).
    """
    current = _active_tenant.get()
    if current is None or tenant is None or current.pk != tenant.pk:
        raise ValueError("replace_active_tenant only swaps a copy of the active tenant")
    _active_tenant.set(tenant)


def clear() -> None:
    """Forget tenant and platform access (end of a request: pooled connections carry nothing)."""
    _active_tenant.set(None)
    _platform_access.set(False)
    _push_to_database()


@contextlib.contextmanager
def tenant_context(tenant: Tenant):
    """Run a block for one tenant: `with tenant_context(tenant): ...`."""
    token = activate(tenant)
    try:
        yield tenant
    finally:
        deactivate(token)


@contextlib.contextmanager
def platform_access():
    """Allow deliberate cross-tenant work (admin, purges, tenant deletion)."""
    token = _platform_access.set(True)
    _push_to_database()
    try:
        yield
    finally:
        _platform_access.reset(token)
        _push_to_database()


def grant_platform_access() -> None:
    """Platform access until `clear()` (the middleware does this for staff on /admin/)."""
    _platform_access.set(True)
    _push_to_database()


def for_tenant(func=None, *, allow_locked: bool = False):
    """Decorate a Celery task or function whose first argument is a tenant id.

    The tenant is loaded, activated for the call and deactivated afterwards, whatever happens.
    A business that is already deleted does nothing: the call returns None. So does one that is
    scheduled for deletion (locked), unless `allow_locked` (the owner's export of everything,
    which works during the grace period): `@for_tenant(allow_locked=True)`.
    """

    def decorate(func):
        @functools.wraps(func)
        def wrapper(tenant_id, *args, **kwargs):
            from tenants.models import Tenant

            tenant = Tenant.objects.filter(pk=tenant_id).first()
            if tenant is None or (tenant.is_locked and not allow_locked):
                logger.info(
                    "task %s skipped: business %s is deleted or locked", func.__name__, tenant_id
                )
                return None
            with tenant_context(tenant):
                return func(tenant_id, *args, **kwargs)

        return wrapper

    return decorate(func) if func is not None else decorate
