"""Fixtures of the CRM tests."""

from __future__ import annotations

import pytest

from tenants.context import tenant_context


@pytest.fixture
def in_a(tenant_a):
    """Tenant A active for the test body (services and the scoped managers need it)."""
    with tenant_context(tenant_a):
        yield tenant_a


@pytest.fixture
def owner_client(client, owner_a):
    client.force_login(owner_a)
    return client
