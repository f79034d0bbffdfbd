"""Invitations: e-mailed, signed, single-use, expiring links that add a person with a role."""

import re
import time
from datetime import timedelta
from urllib.parse import quote

import pytest
from allauth.account.models import EmailAddress
from django.core import mail, signing
from django.utils import timezone

from tenants import services
from tenants.context import tenant_context
from tenants.models import Invitation, Membership, Role, User
from tests.factories import DEFAULT_PASSWORD, InvitationFactory, UserFactory, member

pytestmark = pytest.mark.django_db

PASSWORD = "a-long-and-unusual-passphrase-42"


def invite(client, tenant, email="new.agent@example.com", role=Role.AGENT):
    return client.post(
        f"/app/{tenant.slug}/settings/members/invite/", {"email": email, "role": role}, follow=True
    )


def link_path(message) -> str:
    return re.search(r"https?://[^/\s]+(/invitations/[^/\s]+/)", message.body)[1]


def path_for(invitation) -> str:
    return f"/invitations/{services.invitation_token(invitation)}/"


def invitations_of(tenant):
    with tenant_context(tenant):
        return list(Invitation.objects.order_by("created_at"))


@pytest.fixture
def invited(tenant_a, owner_a, client, django_capture_on_commit_callbacks):
    """An owner of Alpha Dental invites new.agent@example.com; returns the link's path."""
    client.force_login(owner_a)
    with django_capture_on_commit_callbacks(execute=True):
        response = invite(client, tenant_a)
    assert "Invitation sent to new.agent@example.com." in response.content.decode()
    client.logout()
    assert len(mail.outbox) == 1
    return link_path(mail.outbox[0])


# --- Sending ----------------------------------------------------------------------------------


def test_inviting_sends_an_email_with_a_link(
    tenant_a, owner_a, client, django_capture_on_commit_callbacks
):
    client.force_login(owner_a)

    with django_capture_on_commit_callbacks(execute=True):
        invite(client, tenant_a, role=Role.ADMIN)

    (invitation,) = invitations_of(tenant_a)
    assert invitation.email == "new.agent@example.com"
    assert invitation.role == Role.ADMIN
    assert invitation.invited_by == owner_a
    assert invitation.state == "pending"
    (message,) = mail.outbox
    assert message.to == ["new.agent@example.com"]
    assert "Alpha Dental" in message.subject
    assert "/invitations/" in message.body
    assert "http://localhost:8000/invitations/" in message.body


def test_no_email_is_sent_when_the_transaction_does_not_commit(tenant_a, owner_a, client):
    client.force_login(owner_a)

    invite(client, tenant_a)  # on_commit callbacks never run inside the test's transaction

    assert len(invitations_of(tenant_a)) == 1
    assert mail.outbox == []


def test_the_pending_invitation_is_listed_on_the_members_page(invited, client, owner_a):
    client.force_login(owner_a)

    response = client.get("/app/alpha-dental/settings/members/")

    assert "new.agent@example.com" in response.content.decode()


def test_inviting_a_member_is_refused(tenant_a, owner_a, client):
    member(tenant_a, role=Role.AGENT, email="already@example.com")
    client.force_login(owner_a)

    response = invite(client, tenant_a, email="Already@example.com")

    assert "is already a member" in response.content.decode()
    assert invitations_of(tenant_a) == []


def test_an_invalid_address_is_refused(tenant_a, owner_a, client):
    client.force_login(owner_a)

    response = invite(client, tenant_a, email="not-an-address")

    assert "Enter a valid email address." in response.content.decode()
    assert invitations_of(tenant_a) == []


def test_reinviting_replaces_the_open_invitation(
    tenant_a, owner_a, client, django_capture_on_commit_callbacks
):
    client.force_login(owner_a)
    with django_capture_on_commit_callbacks(execute=True):
        invite(client, tenant_a, role=Role.AGENT)
    with django_capture_on_commit_callbacks(execute=True):
        invite(client, tenant_a, role=Role.ADMIN)

    first, second = invitations_of(tenant_a)
    assert first.state == "revoked"
    assert second.state == "pending"
    assert second.role == Role.ADMIN
    old_link, new_link = (link_path(m) for m in mail.outbox)
    invitee = UserFactory(email="new.agent@example.com")
    client.force_login(invitee)

    assert client.post(old_link).status_code == 410
    response = client.post(new_link)

    assert response["Location"] == "/app/alpha-dental/"
    assert Membership.objects.get(user=invitee, tenant=tenant_a).role == Role.ADMIN


def test_an_agent_cannot_invite(tenant_a, client):
    agent = member(tenant_a, role=Role.AGENT)
    client.force_login(agent)

    response = client.post(
        "/app/alpha-dental/settings/members/invite/", {"email": "x@example.com", "role": "agent"}
    )

    assert response.status_code == 403
    assert invitations_of(tenant_a) == []


def test_an_admin_cannot_invite_an_owner(tenant_a, client):
    admin = member(tenant_a, role=Role.ADMIN)
    client.force_login(admin)

    response = invite(client, tenant_a, role=Role.OWNER)

    assert "Only an owner can invite another owner." in response.content.decode()
    assert invitations_of(tenant_a) == []


def test_withdrawing_an_invitation(tenant_a, owner_a, client):
    invitation = InvitationFactory(tenant=tenant_a)
    client.force_login(owner_a)

    response = client.post(f"/app/alpha-dental/settings/invitations/{invitation.pk}/revoke/")

    assert response.status_code == 302
    assert [i.state for i in invitations_of(tenant_a)] == ["revoked"]


def test_withdrawing_another_business_invitation_is_404(tenant_a, tenant_b, owner_a, client):
    invitation = InvitationFactory(tenant=tenant_b)
    client.force_login(owner_a)

    response = client.post(f"/app/alpha-dental/settings/invitations/{invitation.pk}/revoke/")

    assert response.status_code == 404
    assert [i.state for i in invitations_of(tenant_b)] == ["pending"]


# --- Accepting --------------------------------------------------------------------------------


def test_an_existing_user_accepts_and_gets_the_role(invited, tenant_a, client):
    invitee = UserFactory(email="new.agent@example.com")
    client.force_login(invitee)

    page = client.get(invited)
    assert page.status_code == 200
    assert "Join Alpha Dental" in page.content.decode()
    response = client.post(invited, follow=True)

    assert response.redirect_chain[0][0] == "/app/alpha-dental/"
    assert "Welcome to Alpha Dental." in response.content.decode()
    assert Membership.objects.get(user=invitee, tenant=tenant_a).role == Role.AGENT
    (invitation,) = invitations_of(tenant_a)
    assert invitation.state == "accepted"
    assert invitation.accepted_by == invitee


def test_an_existing_user_who_is_logged_out_logs_in_first(invited, tenant_a, client):
    invitee = UserFactory(email="new.agent@example.com")

    page = client.get(invited)
    assert page.status_code == 200
    assert f'href="/accounts/login/?next={quote(invited)}"' in page.content.decode()

    response = client.post(
        "/accounts/login/",
        {"login": "new.agent@example.com", "password": DEFAULT_PASSWORD, "next": invited},
    )
    assert response["Location"] == invited
    client.post(invited)

    assert Membership.objects.get(user=invitee, tenant=tenant_a).role == Role.AGENT


def test_a_new_person_signs_up_from_the_link_and_joins_without_a_second_email(
    invited, tenant_a, client
):
    page = client.get(invited)
    assert "Create an account" in page.content.decode()
    mail.outbox.clear()

    signup_page = client.get("/accounts/signup/")
    assert signup_page.context["form"]["email"].value() == "new.agent@example.com"
    response = client.post(
        "/accounts/signup/",
        {
            "email": "new.agent@example.com",
            "password1": PASSWORD,
            "password2": PASSWORD,
            "business_name": "",
            "accept_terms": "on",
        },
        follow=True,
    )

    assert response.redirect_chain[-1][0] == "/app/alpha-dental/"
    user = User.objects.get(email="new.agent@example.com")
    assert client.session["_auth_user_id"] == str(user.pk)
    assert Membership.objects.get(user=user).tenant == tenant_a
    assert Membership.objects.get(user=user).role == Role.AGENT
    assert EmailAddress.objects.get(user=user).verified
    assert mail.outbox == []  # the link proved the address: no verification e-mail
    assert invitations_of(tenant_a)[0].state == "accepted"
    assert "invitation_token" not in client.session


def test_a_new_person_can_also_create_their_own_business(invited, tenant_a, client):
    client.get(invited)

    client.post(
        "/accounts/signup/",
        {
            "email": "new.agent@example.com",
            "password1": PASSWORD,
            "password2": PASSWORD,
            "business_name": "Agent Side Business",
            "accept_terms": "on",
        },
    )

    user = User.objects.get(email="new.agent@example.com")
    roles = {m.tenant.name: m.role for m in Membership.objects.filter(user=user)}
    assert roles == {"Alpha Dental": Role.AGENT, "Agent Side Business": Role.OWNER}


def test_signing_up_from_the_link_with_another_address_verifies_that_address(
    invited, tenant_a, client
):
    client.get(invited)
    mail.outbox.clear()

    response = client.post(
        "/accounts/signup/",
        {
            "email": "someone.else@example.com",
            "password1": PASSWORD,
            "password2": PASSWORD,
            "business_name": "Elsewhere",
            "accept_terms": "on",
        },
    )

    assert response["Location"] == "/accounts/confirm-email/"
    user = User.objects.get(email="someone.else@example.com")
    assert not User.objects.filter(email="new.agent@example.com").exists()
    assert list(EmailAddress.objects.filter(user=user).values_list("email", "verified")) == [
        ("someone.else@example.com", False)
    ]
    assert not Membership.objects.filter(user=user, tenant=tenant_a).exists()
    assert invitations_of(tenant_a)[0].state == "pending"
    assert mail.outbox[0].to == ["someone.else@example.com"]


def test_signing_up_without_the_link_but_with_a_pending_invitation(tenant_a, client):
    invitation = InvitationFactory(tenant=tenant_a, email="invitee@example.com")

    response = client.post(
        "/accounts/signup/",
        {
            "email": "invitee@example.com",
            "password1": PASSWORD,
            "password2": PASSWORD,
            "business_name": "",
            "accept_terms": "on",
        },
    )

    # No business name is needed; the address is verified the usual way, then the person is
    # shown the invitation waiting for them.
    assert response["Location"] == "/accounts/confirm-email/"
    path = re.search(r"https?://testserver(/accounts/confirm-email/\S+/)", mail.outbox[0].body)[1]
    landing = client.post(path, follow=True)
    assert landing.redirect_chain[-1][0] == "/app/new/"
    # The link's signature carries a timestamp, so compare what it names, not its text.
    shown = re.search(r"/invitations/([^/\"]+)/", landing.content.decode())
    assert shown is not None
    assert signing.loads(shown[1], salt=services.INVITATION_SALT)["i"] == invitation.pk
    assert client.post(shown[0])["Location"] == "/app/alpha-dental/"


# --- Refusals ---------------------------------------------------------------------------------


def test_a_link_works_once(invited, client):
    invitee = UserFactory(email="new.agent@example.com")
    client.force_login(invitee)
    client.post(invited)

    again = client.post(invited)
    page = client.get(invited)

    assert again.status_code == 410
    assert "This invitation has already been used." in again.content.decode()
    assert page.status_code == 410


def test_an_expired_invitation_is_refused(tenant_a, client):
    invitation = InvitationFactory(
        tenant=tenant_a, email="late@example.com", expires_at=timezone.now() - timedelta(minutes=1)
    )
    client.force_login(UserFactory(email="late@example.com"))

    response = client.post(path_for(invitation))

    assert response.status_code == 410
    assert "This invitation has expired. Ask for a new one." in response.content.decode()
    assert not Membership.objects.filter(tenant=tenant_a, user__email="late@example.com").exists()


class _SignerInThePast(signing.TimestampSigner):
    def timestamp(self):
        return signing.b62_encode(int(time.time()) - 8 * 24 * 3600)


def test_an_old_signature_is_refused_even_if_the_row_is_still_open(tenant_a, client):
    invitation = InvitationFactory(tenant=tenant_a, email="late@example.com")
    token = _SignerInThePast(salt=services.INVITATION_SALT).sign_object(
        {"i": invitation.pk, "t": tenant_a.pk}
    )
    client.force_login(UserFactory(email="late@example.com"))

    response = client.post(f"/invitations/{token}/")

    assert response.status_code == 410
    assert "expired" in response.content.decode()
    assert not Membership.objects.filter(tenant=tenant_a, user__email="late@example.com").exists()


def test_a_withdrawn_invitation_is_refused(tenant_a, client):
    invitation = InvitationFactory(tenant=tenant_a, email="gone@example.com")
    with tenant_context(tenant_a):
        services.revoke_invitation(invitation=invitation)
    client.force_login(UserFactory(email="gone@example.com"))

    response = client.post(path_for(invitation))

    assert response.status_code == 410
    assert "This invitation was withdrawn." in response.content.decode()
    assert not Membership.objects.filter(tenant=tenant_a, user__email="gone@example.com").exists()


@pytest.mark.parametrize(
    "mangle",
    [
        lambda token: token[:-2] + ("AA" if not token.endswith("AA") else "BB"),
        lambda token: "not-a-token",
        lambda token: signing.dumps({"i": 1, "t": 1}, salt="another-salt"),
        lambda token: signing.dumps(["a", "list"], salt=services.INVITATION_SALT),
        lambda token: signing.dumps({"i": 999999, "t": 999999}, salt=services.INVITATION_SALT),
    ],
    ids=["tampered", "garbage", "wrong-salt", "wrong-shape", "unknown-ids"],
)
def test_a_bad_link_is_404_with_a_message(tenant_a, client, mangle):
    invitation = InvitationFactory(tenant=tenant_a, email="x@example.com")
    client.force_login(UserFactory(email="x@example.com"))
    path = f"/invitations/{mangle(services.invitation_token(invitation))}/"

    get = client.get(path)
    post = client.post(path)

    assert get.status_code == post.status_code == 404
    assert "This invitation link is not valid." in post.content.decode()
    assert not Membership.objects.filter(tenant=tenant_a).exists()


def test_a_link_naming_another_tenant_than_its_invitation_is_refused(tenant_a, tenant_b, client):
    theirs = InvitationFactory(tenant=tenant_b, email="x@example.com")
    # Properly signed (only a leaked SECRET_KEY could do it), but the pair does not match.
    token = signing.dumps({"i": theirs.pk, "t": tenant_a.pk}, salt=services.INVITATION_SALT)
    client.force_login(UserFactory(email="x@example.com"))

    assert client.post(f"/invitations/{token}/").status_code == 404


def test_someone_logged_in_with_another_address_cannot_accept(invited, tenant_a, client):
    intruder = UserFactory(email="intruder@example.com")
    client.force_login(intruder)

    page = client.get(invited)
    response = client.post(invited)

    assert page.status_code == 200
    assert "but you are logged in as intruder@example.com" in page.content.decode()
    assert response.status_code == 403
    assert (
        "This invitation was sent to new.agent@example.com; sign in with that address to accept it."
        in response.content.decode()
    )
    assert not Membership.objects.filter(user=intruder).exists()
    assert invitations_of(tenant_a)[0].state == "pending"
    # The page offers to log out and come back to the link.
    logout = client.post("/accounts/logout/", {"next": invited})
    assert logout["Location"] == invited
    assert "Log in" in client.get(invited).content.decode()


def test_a_member_accepting_an_invitation_keeps_the_higher_role(tenant_a, client):
    admin = member(tenant_a, role=Role.ADMIN, email="admin@example.com")
    invitation = InvitationFactory(tenant=tenant_a, email="admin@example.com", role=Role.AGENT)
    client.force_login(admin)

    client.post(path_for(invitation))

    assert Membership.objects.get(user=admin, tenant=tenant_a).role == Role.ADMIN
