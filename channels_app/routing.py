"""Which channel a webhook address names: token → channel and tenant, with a per-process cache.

Without a cache every webhook looks its token up across tenants, inside `platform_access()`
(two more writes of the connection's settings), and builds the channel and tenant through
the ORM, about as much work as storing a status callback. Providers post many webhooks to the
same few addresses, so each process remembers for a minute where a token led, and checks
that memory on every request with one small query inside the remembered tenant:

- the channel row is looked up by id *and* token in that tenant (row-level security and an
  explicit tenant condition both apply), so a rotated token, a deleted channel or a channel
  of another tenant finds no row: the entry is dropped at once and the cross-tenant lookup
  decides, exactly as without a cache;
- on PostgreSQL the query also returns a fingerprint of the channel and tenant rows as they
  are now (`md5` of their text, for change detection only); the remembered copies are used
  only when it equals the fingerprint read together with them, so a changed secret, switch
  or name is read again at once. (SQLite has no `md5`: there the rows are read every time.)
- only addresses that led to a channel are remembered, so unknown tokens cannot fill it;
  each request gets its own copies of the remembered objects.

The caller owns the activated tenant: the tenant middleware clears it after the request.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from django.db import connection
from django.db.models.base import ModelState
from django.db.models.expressions import RawSQL

from channels_app.models import Channel
from tenants.context import activate, platform_access, replace_active_tenant
from tenants.models import Tenant

# How long an entry is trusted as a hint; it is checked against the database every time.
ROUTE_TTL_SECONDS = 60.0
# A process serves a bounded number of addresses; beyond that the oldest entries go.
ROUTE_CACHE_SIZE = 1024

_CHANNEL = Channel._meta.db_table
_TENANT = Tenant._meta.db_table
# The channel and tenant rows as one text, hashed: equal fingerprints, equal rows.
_FINGERPRINT = f'md5(ROW("{_CHANNEL}".*, "{_TENANT}".*)::text)'
_CHECK_SQL = (
    f'SELECT {_FINGERPRINT} FROM "{_CHANNEL}"'  # noqa: S608 - our own table names only
    f' JOIN "{_TENANT}" ON "{_TENANT}"."id" = "{_CHANNEL}"."tenant_id"'
    f' WHERE "{_CHANNEL}"."id" = %s AND "{_CHANNEL}"."webhook_token" = %s'
    f' AND "{_CHANNEL}"."tenant_id" = %s'
)


@dataclass(frozen=True)
class _Route:
    channel: Channel  # with its tenant; handed out only as copies
    fingerprint: str | None
    expires_at: float


_routes: dict[str, _Route] = {}
_lock = threading.Lock()


def clear_route_cache() -> None:
    with _lock:
        _routes.clear()


def forget_route(token: str) -> None:
    with _lock:
        _routes.pop(token, None)


def _remember(token: str, channel: Channel, fingerprint: str | None) -> None:
    route = _Route(_copy(channel), fingerprint, time.monotonic() + ROUTE_TTL_SECONDS)
    with _lock:
        if token not in _routes and len(_routes) >= ROUTE_CACHE_SIZE:
            # Dicts keep insertion order: drop the oldest tenth at once, not one per request.
            for old in list(_routes)[: max(1, ROUTE_CACHE_SIZE // 10)]:
                del _routes[old]
        _routes[token] = route


def _cached(token: str) -> _Route | None:
    route = _routes.get(token)
    if route is None:
        return None
    if route.expires_at <= time.monotonic():
        forget_route(token)
        return None
    return route


def _copy(channel: Channel) -> Channel:
    """A copy the request may change (the pipeline updates `last_inbound_at` in memory)."""
    duplicate = _shallow_copy(channel)
    duplicate.tenant = _shallow_copy(channel.tenant)
    return duplicate


def _shallow_copy(instance):
    # The field values, with a state of its own (and so no shared cache of related objects);
    # `copy.copy` of a model instance goes through pickling support, several times slower.
    duplicate = instance.__class__.__new__(instance.__class__)
    duplicate.__dict__.update(instance.__dict__)
    duplicate._state = ModelState()
    duplicate._state.db = instance._state.db
    duplicate._state.adding = False
    return duplicate


def _with_fingerprint(queryset):
    queryset = queryset.select_related("tenant")
    if connection.vendor != "postgresql":
        return queryset
    # Read in the same statement as the rows, so the fingerprint describes exactly them.
    return queryset.annotate(_route_fingerprint=RawSQL(_FINGERPRINT, ()))  # noqa: S611


def _current_fingerprint(route: _Route, token: str) -> str | None:
    with connection.cursor() as cursor:
        cursor.execute(_CHECK_SQL, [route.channel.pk, token, route.channel.tenant_id])
        row = cursor.fetchone()
    return None if row is None else row[0]


def activate_channel(token: str) -> Channel | None:
    """The channel whose webhook token is `token`, with its tenant activated; None if none.

    On None no tenant has been activated. On a channel, its tenant stays active for the rest
    of the request (the tenant middleware clears it).
    """
    route = _cached(token)
    if route is not None:
        channel = _copy(route.channel)
        activate(channel.tenant)
        if connection.vendor == "postgresql":
            fingerprint = _current_fingerprint(route, token)
            if fingerprint is not None and fingerprint == route.fingerprint:
                return channel
            found = fingerprint is not None
        else:
            found = True
        if found:
            # The address still leads here but a row changed (or SQLite): read them again.
            queryset = Channel.objects.filter(pk=route.channel.pk, webhook_token=token)
            channel = _with_fingerprint(queryset).first()
            if channel is not None:
                replace_active_tenant(channel.tenant)
                _remember(token, channel, getattr(channel, "_route_fingerprint", None))
                return channel
        # Rotated or deleted: forget the hint and ask across tenants, as without a cache.
        forget_route(token)
        activate(None)

    with platform_access():
        channel = _with_fingerprint(Channel.unscoped.filter(webhook_token=token)).first()
    if channel is None:
        return None
    activate(channel.tenant)
    _remember(token, channel, getattr(channel, "_route_fingerprint", None))
    return channel
