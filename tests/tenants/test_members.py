"""The team page: who belongs to a business, their roles, and who may change them."""

import pytest

from tenants.models import Membership, Role
from tests.factories import member

pytestmark = pytest.mark.django_db

MEMBERS_URL = "/app/alpha-dental/settings/members/"


def role_url(membership, slug="alpha-dental"):
    return f"/app/{slug}/settings/members/{membership.pk}/role/"


def remove_url(membership, slug="alpha-dental"):
    return f"/app/{slug}/settings/members/{membership.pk}/remove/"


def membership(user, tenant):
    return Membership.objects.get(user=user, tenant=tenant)


def test_every_member_sees_the_team(tenant_a, owner_a, client):
    agent = member(tenant_a, role=Role.AGENT, email="agent@alpha.example")
    client.force_login(agent)

    response = client.get(MEMBERS_URL)

    assert response.status_code == 200
    body = response.content.decode()
    assert "owner@alpha.example" in body
    assert "agent@alpha.example" in body
    assert "Send the invitation" not in body  # agents do not manage the team
    assert "style=" not in body


def test_admins_see_the_management_controls(tenant_a, owner_a, client):
    client.force_login(owner_a)

    body = client.get(MEMBERS_URL).content.decode()

    assert "Send the invitation" in body
    assert "Pending invitations" in body


def test_a_non_member_gets_404(tenant_a, owner_b, client):
    client.force_login(owner_b)

    assert client.get(MEMBERS_URL).status_code == 404


def test_an_admin_changes_an_agents_role(tenant_a, owner_a, client):
    admin = member(tenant_a, role=Role.ADMIN)
    agent = member(tenant_a, role=Role.AGENT)
    client.force_login(admin)

    response = client.post(role_url(membership(agent, tenant_a)), {"role": "admin"}, follow=True)

    assert "Role updated." in response.content.decode()
    assert membership(agent, tenant_a).role == Role.ADMIN


def test_an_unknown_role_is_refused(tenant_a, owner_a, client):
    agent = member(tenant_a, role=Role.AGENT)
    client.force_login(owner_a)

    response = client.post(role_url(membership(agent, tenant_a)), {"role": "god"}, follow=True)

    assert "Choose a valid role." in response.content.decode()
    assert membership(agent, tenant_a).role == Role.AGENT


def test_only_an_owner_grants_the_owner_role(tenant_a, owner_a, client):
    admin = member(tenant_a, role=Role.ADMIN)
    agent = member(tenant_a, role=Role.AGENT)
    client.force_login(admin)

    response = client.post(role_url(membership(agent, tenant_a)), {"role": "owner"}, follow=True)

    assert "Only an owner can grant or take away the owner role." in response.content.decode()
    assert membership(agent, tenant_a).role == Role.AGENT


def test_an_admin_cannot_demote_or_remove_an_owner(tenant_a, owner_a, client):
    admin = member(tenant_a, role=Role.ADMIN)
    client.force_login(admin)

    demote = client.post(role_url(membership(owner_a, tenant_a)), {"role": "agent"}, follow=True)
    remove = client.post(remove_url(membership(owner_a, tenant_a)), follow=True)

    assert "Only an owner can grant or take away the owner role." in demote.content.decode()
    assert "Only an owner can remove an owner." in remove.content.decode()
    assert membership(owner_a, tenant_a).role == Role.OWNER


def test_the_last_owner_cannot_be_demoted(tenant_a, owner_a, client):
    client.force_login(owner_a)

    response = client.post(role_url(membership(owner_a, tenant_a)), {"role": "admin"}, follow=True)

    assert "A business needs at least one owner" in response.content.decode()
    assert membership(owner_a, tenant_a).role == Role.OWNER


def test_the_last_owner_cannot_leave(tenant_a, owner_a, client):
    client.force_login(owner_a)

    response = client.post(remove_url(membership(owner_a, tenant_a)), follow=True)

    assert "The last owner cannot be removed" in response.content.decode()
    assert membership(owner_a, tenant_a).role == Role.OWNER


def test_with_two_owners_one_can_step_down_then_the_other_cannot(tenant_a, owner_a, client):
    second = member(tenant_a, role=Role.OWNER)
    client.force_login(owner_a)

    client.post(role_url(membership(second, tenant_a)), {"role": "admin"})
    response = client.post(role_url(membership(owner_a, tenant_a)), {"role": "admin"}, follow=True)

    assert membership(second, tenant_a).role == Role.ADMIN
    assert membership(owner_a, tenant_a).role == Role.OWNER
    assert "A business needs at least one owner" in response.content.decode()


def test_an_owner_removes_a_member(tenant_a, owner_a, client):
    agent = member(tenant_a, role=Role.AGENT, email="agent@alpha.example")
    client.force_login(owner_a)

    response = client.post(remove_url(membership(agent, tenant_a)), follow=True)

    assert "agent@alpha.example was removed." in response.content.decode()
    assert not Membership.objects.filter(user=agent, tenant=tenant_a).exists()
    client.force_login(agent)
    assert client.get("/app/alpha-dental/").status_code == 404


def test_an_owner_can_leave_when_another_owner_remains(tenant_a, owner_a, client):
    member(tenant_a, role=Role.OWNER)
    client.force_login(owner_a)

    response = client.post(remove_url(membership(owner_a, tenant_a)))

    assert response["Location"] == "/app/"
    assert not Membership.objects.filter(user=owner_a, tenant=tenant_a).exists()


def test_an_agent_may_leave(tenant_a, owner_a, client):
    agent = member(tenant_a, role=Role.AGENT)
    client.force_login(agent)

    response = client.post(remove_url(membership(agent, tenant_a)))

    assert response.status_code == 302
    assert not Membership.objects.filter(user=agent, tenant=tenant_a).exists()


def test_an_agent_cannot_change_roles_or_remove_others(tenant_a, owner_a, client):
    agent = member(tenant_a, role=Role.AGENT)
    other = member(tenant_a, role=Role.AGENT)
    client.force_login(agent)

    assert client.post(role_url(membership(other, tenant_a)), {"role": "admin"}).status_code == 403
    assert client.post(role_url(membership(agent, tenant_a)), {"role": "owner"}).status_code == 403
    assert client.post(remove_url(membership(other, tenant_a))).status_code == 403
    assert membership(other, tenant_a).role == Role.AGENT
    assert membership(agent, tenant_a).role == Role.AGENT


def test_another_business_membership_is_404(tenant_a, tenant_b, owner_a, owner_b, client):
    # owner_a is an owner of Alpha Dental and names Bravo Motors' membership in Alpha's URLs.
    theirs = membership(owner_b, tenant_b)
    client.force_login(owner_a)

    assert client.post(role_url(theirs), {"role": "agent"}).status_code == 404
    assert client.post(remove_url(theirs)).status_code == 404
    assert membership(owner_b, tenant_b).role == Role.OWNER


def test_a_member_of_both_businesses_still_cannot_cross(tenant_a, tenant_b, owner_a, client):
    victim = member(tenant_b, role=Role.AGENT)
    client.force_login(owner_a)
    Membership.objects.create(tenant=tenant_b, user=owner_a, role=Role.AGENT)

    # An owner in A, an agent in B: B's membership through A's URL is 404, through B's 403.
    assert client.post(role_url(membership(victim, tenant_b)), {"role": "admin"}).status_code == 404
    assert (
        client.post(
            role_url(membership(victim, tenant_b), slug="bravo-motors"), {"role": "admin"}
        ).status_code
        == 403
    )
    assert membership(victim, tenant_b).role == Role.AGENT


def test_the_member_pages_need_a_login(tenant_a, owner_a, client):
    response = client.get(MEMBERS_URL)

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_role_changes_must_be_posted(tenant_a, owner_a, client):
    agent = member(tenant_a, role=Role.AGENT)
    client.force_login(owner_a)

    assert client.get(role_url(membership(agent, tenant_a))).status_code == 405
