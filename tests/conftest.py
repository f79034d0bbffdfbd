"""Shared fixtures. PostgreSQL-only tests are marked `postgres_only` and skipped, with a
reason, when the suite runs on SQLite."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.db import connection

from tenants import context
from tests.factories import TenantFactory, member


def pytest_collection_modifyitems(config, items):
    if settings.IS_POSTGRES:
        return
    skip = pytest.mark.skip(
        reason="PostgreSQL-only (row-level security); the suite is running on SQLite"
    )
    for item in items:
        if "postgres_only" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _no_tenant_leaks_between_tests():
    context.clear()
    yield
    context.clear()


@pytest.fixture
def tenant_a(db):
    return TenantFactory(name="Alpha Dental", slug="alpha-dental")


@pytest.fixture
def tenant_b(db):
    return TenantFactory(name="Bravo Motors", slug="bravo-motors")


@pytest.fixture
def owner_a(tenant_a):
    return member(tenant_a, email="owner@alpha.example")


@pytest.fixture
def owner_b(tenant_b):
    return member(tenant_b, email="owner@bravo.example")


@pytest.fixture
def pg_connection(db):
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL-only")
    return connection
