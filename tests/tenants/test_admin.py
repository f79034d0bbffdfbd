"""The Django admin: platform staff see every tenant's rows; nobody else gets in; no secrets."""

from __future__ import annotations

import pytest
from allauth.mfa.models import Authenticator
from django.urls import reverse

from tenants.admin import TenantOwnedAdmin
from tenants.models import Invitation, Membership, Tenant, User
from tests.factories import DEFAULT_PASSWORD, InvitationFactory, UserFactory

pytestmark = pytest.mark.django_db

MODELS = [Tenant, User, Membership, Invitation]


def changelist(model):
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")


def change(obj):
    meta = obj._meta
    return reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[obj.pk])


@pytest.fixture
def staff_client(client, db):
    staff = UserFactory(email="staff@platform.example", is_staff=True, is_superuser=True)
    client.force_login(staff)
    return client


@pytest.fixture
def invitations(tenant_a, tenant_b):
    return (
        InvitationFactory(tenant=tenant_a, email="first@alpha.example"),
        InvitationFactory(tenant=tenant_b, email="second@bravo.example"),
    )


@pytest.mark.parametrize("model", MODELS)
def test_staff_can_list_each_model(staff_client, owner_a, invitations, model):
    response = staff_client.get(changelist(model))

    assert response.status_code == 200


def test_staff_can_open_each_object(staff_client, tenant_a, owner_a, invitations):
    membership = Membership.objects.get(user=owner_a)
    for obj in (tenant_a, owner_a, membership, invitations[0]):
        response = staff_client.get(change(obj))

        assert response.status_code == 200, obj


def test_invitations_of_every_tenant_are_listed_and_filterable(staff_client, invitations):
    alpha, bravo = invitations

    everything = staff_client.get(changelist(Invitation)).content.decode()
    only_bravo = staff_client.get(
        changelist(Invitation), {"tenant__id__exact": bravo.tenant_id}
    ).content.decode()
    searched = staff_client.get(changelist(Invitation), {"q": "alpha-dental"}).content.decode()

    assert alpha.email in everything and bravo.email in everything
    assert bravo.email in only_bravo and alpha.email not in only_bravo
    assert alpha.email in searched and bravo.email not in searched


def test_staff_can_withdraw_an_invitation_from_the_admin(staff_client, invitations):
    alpha, _ = invitations

    staff_client.post(
        changelist(Invitation),
        {"action": "revoke", "_selected_action": [alpha.pk]},
    )

    from tenants.context import platform_access

    with platform_access():
        assert Invitation.unscoped.get(pk=alpha.pk).state == "revoked"


def test_tenants_are_searchable_by_name_and_slug(staff_client, tenant_a, tenant_b):
    html = staff_client.get(changelist(Tenant), {"q": "bravo-motors"}).content.decode()

    assert "Bravo Motors" in html and "Alpha Dental" not in html


def test_memberships_filter_by_tenant_and_role_and_search_by_email(staff_client, owner_a, owner_b):
    by_tenant = staff_client.get(
        changelist(Membership), {"tenant__id__exact": owner_a.memberships.get().tenant_id}
    ).content.decode()
    by_email = staff_client.get(changelist(Membership), {"q": "owner@bravo"}).content.decode()
    by_role = staff_client.get(changelist(Membership), {"role__exact": "agent"}).content.decode()

    assert "owner@alpha.example" in by_tenant and "owner@bravo.example" not in by_tenant
    assert "owner@bravo.example" in by_email and "owner@alpha.example" not in by_email
    assert "owner@alpha.example" not in by_role


def test_staff_can_add_a_user_through_the_admin(staff_client):
    response = staff_client.post(
        reverse("admin:tenants_user_add"),
        {
            "email": "new.person@example.com",
            "full_name": "New Person",
            "usable_password": "true",
            "password1": "a-long-enough-password-42",
            "password2": "a-long-enough-password-42",
        },
    )

    user = User.objects.get(email="new.person@example.com")
    assert response.status_code == 302
    assert user.check_password("a-long-enough-password-42")


def test_staff_can_edit_a_user_and_never_sees_the_password(staff_client, owner_a):
    html = staff_client.get(change(owner_a)).content.decode()

    assert DEFAULT_PASSWORD not in html
    assert owner_a.password not in html  # the full hash is not shown either
    response = staff_client.post(
        change(owner_a),
        {
            "email": owner_a.email,
            "full_name": "Renamed Owner",
            "is_active": "on",
            "last_login_0": "",
            "date_joined_0": "2024-01-01",
            "date_joined_1": "10:00:00",
            "memberships-TOTAL_FORMS": "0",
            "memberships-INITIAL_FORMS": "0",
        },
    )
    owner_a.refresh_from_db()

    assert response.status_code == 302
    assert owner_a.full_name == "Renamed Owner"


def test_second_factor_secrets_are_not_shown(staff_client, owner_a):
    authenticator = Authenticator.objects.create(
        user=owner_a, type=Authenticator.Type.TOTP, data={"secret": "TOTPSEEDNEVERSHOWN"}
    )

    html = staff_client.get(change(authenticator)).content.decode()

    assert "TOTPSEEDNEVERSHOWN" not in html


def test_non_staff_are_sent_to_the_admin_login(client, owner_a, invitations):
    client.force_login(owner_a)
    login = reverse("admin:login")

    for model in MODELS:
        response = client.get(changelist(model))
        assert response.status_code == 302
        assert response["Location"].startswith(login)


def test_anonymous_visitors_are_sent_to_the_admin_login(client):
    response = client.get(changelist(Invitation))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


def test_tenant_owned_admin_adds_the_tenant_filter_and_search(rf):
    class ProbeAdmin(TenantOwnedAdmin):
        list_filter = ("role",)
        search_fields = ("email",)

    from django.contrib import admin

    model_admin = ProbeAdmin(Invitation, admin.site)
    request = rf.get("/admin/")

    assert model_admin.get_list_filter(request) == ["tenant", "role"]
    assert model_admin.get_search_fields(request) == ["email", "tenant__name", "tenant__slug"]
    assert "tenant" in model_admin.get_readonly_fields(request)
    assert not model_admin.has_add_permission(request)


@pytest.mark.django_db
def test_staff_cannot_demote_or_remove_members_through_the_admin(client, tenant_a, owner_a):
    from tenants.models import Role

    staff = UserFactory(is_staff=True, is_superuser=True)
    client.force_login(staff)
    membership = Membership.objects.get(user=owner_a)
    url = f"/admin/tenants/membership/{membership.pk}/change/"
    client.post(url, {"user": owner_a.pk, "tenant": tenant_a.pk, "role": Role.AGENT})
    client.post(f"/admin/tenants/membership/{membership.pk}/delete/", {"post": "yes"})
    membership.refresh_from_db()
    assert membership.role == Role.OWNER
