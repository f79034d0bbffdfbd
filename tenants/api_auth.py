"""Per-business API keys (DESIGN §7): `Authorization: Bearer <key>`.

Only a SHA-256 hash of each key is stored. A valid key activates its business for the request,
exactly as the tenant middleware does for a member's page, so the scoped managers and the
row-level security policies apply to everything the API does; the middleware clears it at the
end of the request.
"""

from __future__ import annotations

import hashlib
import secrets

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from rest_framework import authentication, exceptions, permissions

from tenants import context
from tenants.models import ApiKey, Tenant

KEY_PREFIX = "sos_"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@transaction.atomic
def create_api_key(*, name: str, created_by=None) -> tuple[ApiKey, str]:
    """A new key for the active business; returns the record and the key (shown once)."""
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    record = ApiKey.objects.create(
        name=(name or "").strip()[:100] or _("API key"),
        prefix=key[: len(KEY_PREFIX) + 6],
        key_hash=hash_key(key),
        created_by=created_by,
    )
    return record, key


def revoke_api_key(*, api_key: ApiKey) -> ApiKey:
    if api_key.revoked_at is None:
        ApiKey.objects.filter(pk=api_key.pk, revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        )
        api_key.refresh_from_db()
    return api_key


class ApiKeyClient:
    """Who is calling: a business's key, not a person. `is_authenticated` is False so code that
    records "which user did this" (the access log) does not take the key for an account;
    permission comes from `HasApiKey`, which checks the key itself."""

    is_authenticated = False
    is_anonymous = False

    def __init__(self, api_key: ApiKey):
        self.api_key = api_key
        self.pk = None
        self.email = ""

    def __str__(self):
        return str(self.api_key)


class ApiKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        scheme, _sep, key = header.partition(" ")
        key = key.strip()
        if scheme.lower() != self.keyword.lower() or not key:
            raise exceptions.AuthenticationFailed(
                _("Send the key as “Authorization: Bearer <key>”.")
            )
        # The key names the business, so the lookup crosses businesses by design.
        with context.platform_access():
            api_key = (
                ApiKey.unscoped.filter(key_hash=hash_key(key), revoked_at__isnull=True)
                .select_related("tenant")
                .first()
            )
            if api_key is not None:
                ApiKey.unscoped.filter(pk=api_key.pk).update(last_used_at=timezone.now())
        if api_key is not None and api_key.tenant.is_locked:
            raise exceptions.AuthenticationFailed(
                _(
                    "This business is scheduled for deletion: its API is off until an owner "
                    "restores the business."
                )
            )
        if api_key is None or api_key.tenant.status != Tenant.Status.ACTIVE:
            raise exceptions.AuthenticationFailed(_("This API key is not valid or was revoked."))
        context.activate(api_key.tenant)
        request._request.tenant = api_key.tenant
        return ApiKeyClient(api_key), api_key

    def authenticate_header(self, request):
        return self.keyword


class HasApiKey(permissions.BasePermission):
    message = _("An API key is required: send “Authorization: Bearer <key>”.")

    def has_permission(self, request, view):
        return isinstance(request.auth, ApiKey)
