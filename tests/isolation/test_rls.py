"""P11, the second wall: PostgreSQL row-level security on every tenant-owned table.

These run only on PostgreSQL (the suite prints them as skipped on SQLite; CI requires them).
"""

from __future__ import annotations

import pytest
from django.db import DatabaseError, connection, transaction
from django.db.models import ForeignKey

from tenants import rls
from tenants.context import platform_access, tenant_context
from tenants.models import Membership, Tenant, TenantOwned, tenant_owned_models
from tests.factories import factory_for, member

pytestmark = [pytest.mark.postgres_only, pytest.mark.django_db]

# Tables that carry a tenant but are deliberately platform-level, with the reason.
PLATFORM_LEVEL = {
    Membership: "read before a tenant is active (middleware, tenant switcher)",
}


def _current_setting(name: str) -> str | None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting(%s, true)", [name])
        return cursor.fetchone()[0]


def test_the_application_role_cannot_bypass_rls():
    with connection.cursor() as cursor:
        cursor.execute("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user")
        is_superuser, bypasses_rls = cursor.fetchone()
    assert not is_superuser, "the application must not connect as a superuser"
    assert not bypasses_rls, "the application role must not have BYPASSRLS"


def test_every_model_with_a_tenant_is_tenant_owned_or_declared_platform_level():
    from django.apps import apps

    for model in apps.get_models():
        field = next((f for f in model._meta.concrete_fields if f.name == "tenant"), None)
        if field is None or not isinstance(field, ForeignKey) or field.related_model is not Tenant:
            continue
        assert issubclass(model, TenantOwned) or model in PLATFORM_LEVEL, (
            f"{model._meta.label} has a tenant but does not extend TenantOwned"
        )


def test_every_tenant_owned_table_has_forced_rls_and_the_policy():
    catalogue = rls.tables_with_policy()
    models = tenant_owned_models()
    assert models, "no tenant-owned models found"
    for model in models:
        table = model._meta.db_table
        state = catalogue.get(table)
        assert state is not None, f"{table} does not exist"
        assert state["enabled"], f"RLS is not enabled on {table}"
        assert state["forced"], f"RLS is not forced on {table} (its owner would bypass it)"
        assert rls.POLICY_NAME in state["policies"], f"{table} has no {rls.POLICY_NAME} policy"


def _rows_of_every_tenant_owned_model(tenant_a, tenant_b):
    created = {}
    for model in tenant_owned_models():
        factory = factory_for(model)
        assert factory is not None, f"tests/factories.py has no factory for {model.__name__}"
        created[model] = (factory(tenant=tenant_a).pk, factory(tenant=tenant_b).pk)
    return created


def _raw_rows(model) -> set[tuple[int, int]]:
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT id, tenant_id FROM "{model._meta.db_table}"')
        return set(cursor.fetchall())


def test_a_raw_query_under_tenant_b_returns_none_of_tenant_as_rows(tenant_a, tenant_b):
    created = _rows_of_every_tenant_owned_model(tenant_a, tenant_b)
    for model, (id_a, id_b) in created.items():
        with tenant_context(tenant_b):
            rows = _raw_rows(model)
        assert (id_b, tenant_b.pk) in rows, f"{model.__name__}: B cannot see its own row"
        assert all(tenant_id == tenant_b.pk for _, tenant_id in rows), (
            f"{model.__name__}: a raw query under tenant B returned another tenant's rows"
        )

        # No tenant active: nothing at all, not everything.
        assert _raw_rows(model) == set(), f"{model.__name__}: rows visible with no tenant"

        with platform_access():
            assert {(id_a, tenant_a.pk), (id_b, tenant_b.pk)} <= _raw_rows(model)


def test_an_empty_tenant_setting_matches_nothing(tenant_a):
    created = _rows_of_every_tenant_owned_model(tenant_a, tenant_a)
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config('app.tenant_id', '', false)")
    for model in created:
        assert _raw_rows(model) == set()


def test_writing_a_row_for_another_tenant_is_refused_by_the_database(tenant_a, tenant_b):
    from tenants.models import Invitation

    with (
        tenant_context(tenant_b),
        pytest.raises(DatabaseError, match="row-level security"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(
            "INSERT INTO tenants_invitation (tenant_id, email, role, created_at, expires_at)"
            " VALUES (%s, 'x@example.com', 'agent', now(), now())",
            [tenant_a.pk],
        )
    with platform_access():
        assert not Invitation.unscoped.filter(email="x@example.com").exists()


def test_moving_a_row_to_another_tenant_is_refused_by_the_database(tenant_a, tenant_b):
    created = _rows_of_every_tenant_owned_model(tenant_a, tenant_b)
    model = next(iter(created))
    id_a, _ = created[model]
    with (
        tenant_context(tenant_a),
        pytest.raises(DatabaseError, match="row-level security"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(
            f'UPDATE "{model._meta.db_table}" SET tenant_id = %s WHERE id = %s',
            [tenant_b.pk, id_a],
        )


def test_a_request_leaves_no_tenant_on_the_connection(client, tenant_a):
    client.force_login(member(tenant_a))
    assert client.get(f"/app/{tenant_a.slug}/").status_code == 200
    assert _current_setting("app.tenant_id") in ("", None)
    assert _current_setting("app.platform_access") in ("", None)


def test_a_failed_request_leaves_no_tenant_on_the_connection(client, tenant_a):
    client.force_login(member(tenant_a))
    assert client.get(f"/app/{tenant_a.slug}/settings/members/999999/role/").status_code == 405
    assert client.post(f"/app/{tenant_a.slug}/settings/members/999999/role/").status_code == 404
    assert _current_setting("app.tenant_id") in ("", None)


@pytest.mark.django_db(transaction=True)
def test_a_connection_opened_after_activation_gets_the_tenant(tenant_a):
    with tenant_context(tenant_a):
        connection.close()  # the next query opens a fresh connection
        assert _current_setting("app.tenant_id") == str(tenant_a.pk)
    assert _current_setting("app.tenant_id") == ""
