"""The first wall: tenant-owned models cannot be read or written without saying which tenant."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from tenants.context import (
    NoActiveTenant,
    PlatformAccessRequired,
    for_tenant,
    get_current_tenant,
    platform_access,
    tenant_context,
)
from tests.factories import ProbeChildFactory, ProbeParentFactory, member
from tests.probe_app.models import ProbeChild, ProbeParent

pytestmark = pytest.mark.django_db


def test_the_default_manager_refuses_to_run_without_a_tenant(tenant_a):
    ProbeParentFactory(tenant=tenant_a)
    with pytest.raises(NoActiveTenant):
        list(ProbeParent.objects.all())
    with pytest.raises(NoActiveTenant):
        ProbeParent.objects.filter(name="x").exists()


def test_the_default_manager_returns_only_the_active_tenants_rows(tenant_a, tenant_b):
    mine = ProbeParentFactory(tenant=tenant_a)
    ProbeParentFactory(tenant=tenant_b)
    with tenant_context(tenant_a):
        assert list(ProbeParent.objects.all()) == [mine]
        assert ProbeParent.objects.count() == 1


def test_reverse_relations_are_scoped_too(tenant_a, tenant_b):
    child = ProbeChildFactory(tenant=tenant_a)
    with tenant_context(tenant_a):
        assert list(child.parent.children.all()) == [child]
    with tenant_context(tenant_b):
        assert list(child.parent.children.all()) == []


def test_the_unscoped_manager_needs_explicit_platform_access(tenant_a, tenant_b):
    ProbeParentFactory(tenant=tenant_a)
    ProbeParentFactory(tenant=tenant_b)
    with pytest.raises(PlatformAccessRequired):
        list(ProbeParent.unscoped.all())
    with platform_access():
        assert ProbeParent.unscoped.count() == 2
    with pytest.raises(PlatformAccessRequired):
        ProbeParent.unscoped.count()


def test_saving_fills_the_tenant_from_the_active_one(tenant_a):
    with tenant_context(tenant_a):
        parent = ProbeParent.objects.create(name="filled")
    assert parent.tenant_id == tenant_a.pk


def test_saving_without_any_tenant_is_refused(db):
    with pytest.raises(NoActiveTenant):
        ProbeParent(name="orphan").save()


def test_foreign_keys_never_cross_tenants(tenant_a, tenant_b):
    parent_of_a = ProbeParentFactory(tenant=tenant_a)
    with tenant_context(tenant_b):
        # The related object loaded (cached) and only its id given: both are refused.
        with pytest.raises(ValidationError, match="another business"):
            ProbeChild.objects.create(parent=parent_of_a, name="sneaky")
        with pytest.raises(ValidationError, match="another business"):
            ProbeChild.objects.create(parent_id=parent_of_a.pk, name="sneaky")
        child = ProbeChild(parent_id=parent_of_a.pk, name="sneaky", tenant=tenant_b)
        with pytest.raises(ValidationError):
            child.full_clean()
    with platform_access():
        assert not ProbeChild.unscoped.filter(name="sneaky").exists()


def test_contexts_nest_and_restore(tenant_a, tenant_b):
    with tenant_context(tenant_a):
        with tenant_context(tenant_b):
            assert get_current_tenant() == tenant_b
        assert get_current_tenant() == tenant_a
    assert get_current_tenant() is None


def test_the_task_decorator_activates_the_tenant_and_deactivates_it_after(tenant_a):
    ProbeParentFactory(tenant=tenant_a, name="seen by the task")

    @for_tenant
    def task(tenant_id):
        return [p.name for p in ProbeParent.objects.all()]

    assert task(tenant_a.pk) == ["seen by the task"]
    assert get_current_tenant() is None


def test_the_task_decorator_deactivates_even_when_the_task_fails(tenant_a):
    @for_tenant
    def task(tenant_id):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        task(tenant_a.pk)
    assert get_current_tenant() is None


def test_the_task_decorator_skips_a_locked_business_unless_told_otherwise(tenant_a):
    ProbeParentFactory(tenant=tenant_a, name="still here")
    tenant_a.status = tenant_a.Status.DELETION_REQUESTED
    tenant_a.save(update_fields=["status"])

    @for_tenant
    def task(tenant_id):
        return [p.name for p in ProbeParent.objects.all()]

    @for_tenant(allow_locked=True)
    def export(tenant_id):
        return [p.name for p in ProbeParent.objects.all()]

    assert task(tenant_a.pk) is None
    assert export(tenant_a.pk) == ["still here"]
    assert get_current_tenant() is None


def test_requests_do_not_leave_a_tenant_active(client, tenant_a):
    client.force_login(member(tenant_a))
    assert client.get(f"/app/{tenant_a.slug}/").status_code == 200
    assert get_current_tenant() is None
    assert client.get("/app/somebody-else/").status_code == 404
    assert get_current_tenant() is None


def test_the_manager_filters_by_itself_even_when_the_database_would_let_rows_through(
    tenant_a, tenant_b
):
    # Platform access opens the PostgreSQL policy, so only the manager's own filter is left:
    # this keeps the first wall tested on PostgreSQL, where RLS would otherwise hide its loss.
    mine = ProbeParentFactory(tenant=tenant_a)
    ProbeParentFactory(tenant=tenant_b)
    with platform_access(), tenant_context(tenant_a):
        assert list(ProbeParent.objects.all()) == [mine]


def test_saving_a_row_of_another_tenant_is_refused(tenant_a, tenant_b):
    with tenant_context(tenant_b), pytest.raises(ValidationError, match="another business"):
        ProbeParent(name="planted", tenant=tenant_a).save()
    with platform_access():
        assert not ProbeParent.unscoped.filter(name="planted").exists()
