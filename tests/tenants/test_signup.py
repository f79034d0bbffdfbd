"""Sign-up: e-mail and password, mandatory verification, the business created with its owner."""

import re

import pytest
from allauth.account.models import EmailAddress
from django.core import mail

from tenants.models import Membership, Role, Tenant, User
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

SIGNUP_URL = "/accounts/signup/"
LOGIN_URL = "/accounts/login/"
PASSWORD = "a-long-and-unusual-passphrase-42"


def signup_data(**overrides):
    data = {
        "email": "new@example.com",
        "password1": PASSWORD,
        "password2": PASSWORD,
        "business_name": "Acme Dental",
        "accept_terms": "on",
    }
    data.update(overrides)
    return {key: value for key, value in data.items() if value is not None}


def confirmation_link(message) -> str:
    return re.search(r"https?://testserver(/accounts/confirm-email/[^/\s]+/)", message.body)[1]


def test_the_signup_page_asks_for_the_business_and_the_terms(client):
    response = client.get(SIGNUP_URL)

    assert response.status_code == 200
    body = response.content.decode()
    assert 'name="business_name"' in body
    assert 'name="accept_terms"' in body
    assert "I am 18 or older" in body


def test_signup_creates_the_user_the_business_and_the_owner_membership(client):
    response = client.post(SIGNUP_URL, signup_data(accepts_marketing_email="on"))

    assert response.status_code == 302
    user = User.objects.get(email="new@example.com")
    assert user.accepted_terms_at is not None
    assert user.accepts_marketing_email is True
    tenant = Tenant.objects.get(name="Acme Dental")
    assert tenant.slug == "acme-dental"
    membership = Membership.objects.get(user=user)
    assert membership.tenant == tenant
    assert membership.role == Role.OWNER


def test_signup_sends_a_verification_email_and_does_not_log_in(client):
    response = client.post(SIGNUP_URL, signup_data())

    assert response["Location"] == "/accounts/confirm-email/"
    assert "_auth_user_id" not in client.session
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["new@example.com"]
    assert "/accounts/confirm-email/" in mail.outbox[0].body
    assert not EmailAddress.objects.get(email="new@example.com").verified


def test_login_is_refused_until_the_address_is_verified(client):
    client.post(SIGNUP_URL, signup_data())
    client.logout()

    response = client.post(LOGIN_URL, {"login": "new@example.com", "password": PASSWORD})

    assert response.status_code == 302
    assert response["Location"] == "/accounts/confirm-email/"
    assert "_auth_user_id" not in client.session
    assert client.get("/app/acme-dental/")["Location"].startswith("/accounts/login/")


def test_the_verification_link_logs_in_and_lands_in_the_new_business(client):
    client.post(SIGNUP_URL, signup_data())
    path = confirmation_link(mail.outbox[0])

    page = client.get(path)
    assert page.status_code == 200
    assert b"new@example.com" in page.content

    response = client.post(path, follow=True)

    assert response.redirect_chain[-1][0] == "/app/acme-dental/"
    assert response.status_code == 200
    assert EmailAddress.objects.get(email="new@example.com").verified
    assert client.session["_auth_user_id"] == str(User.objects.get(email="new@example.com").pk)


def test_after_verification_the_person_can_log_in(client):
    client.post(SIGNUP_URL, signup_data())
    client.post(confirmation_link(mail.outbox[0]))
    client.logout()

    response = client.post(
        LOGIN_URL, {"login": "new@example.com", "password": PASSWORD}, follow=True
    )

    assert response.redirect_chain[-1][0] == "/app/acme-dental/"


def test_the_terms_box_is_required(client):
    response = client.post(SIGNUP_URL, signup_data(accept_terms=None))

    assert response.status_code == 200
    assert "accept_terms" in response.context["form"].errors
    assert "You must be 18 or older and accept the terms" in response.content.decode()
    assert not User.objects.filter(email="new@example.com").exists()
    assert mail.outbox == []


def test_a_business_name_is_required_without_an_invitation(client):
    response = client.post(SIGNUP_URL, signup_data(business_name=""))

    assert response.status_code == 200
    assert response.context["form"].errors["business_name"] == ["Give your business a name."]
    assert not User.objects.exists()


def test_a_weak_password_is_refused_with_a_reason(client):
    response = client.post(SIGNUP_URL, signup_data(password1="password", password2="password"))

    assert response.status_code == 200
    errors = response.context["form"].errors["password1"]
    assert any("too common" in error for error in errors)
    assert any("too short" in error for error in errors)
    assert not User.objects.exists()
    assert not Tenant.objects.exists()


def test_mismatched_passwords_are_refused(client):
    response = client.post(SIGNUP_URL, signup_data(password2=PASSWORD + "x"))

    assert response.status_code == 200
    assert "password2" in response.context["form"].errors
    assert not User.objects.exists()


def test_an_invalid_email_is_refused(client):
    response = client.post(SIGNUP_URL, signup_data(email="not-an-address"))

    assert response.status_code == 200
    assert "email" in response.context["form"].errors


def test_a_duplicate_email_creates_nothing_and_tells_the_owner_of_the_address(client):
    UserFactory(email="taken@example.com")

    response = client.post(SIGNUP_URL, signup_data(email="Taken@Example.com"))

    # Enumeration is prevented: the page looks like a normal sign-up, and the message goes to
    # the mailbox of the address, which already has an account.
    assert response.status_code == 302
    assert response["Location"] == "/accounts/confirm-email/"
    assert User.objects.filter(email__iexact="taken@example.com").count() == 1
    assert not Tenant.objects.exists()
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["taken@example.com"]
    assert "already" in mail.outbox[0].subject.lower() + mail.outbox[0].body.lower()


def test_signup_can_be_closed(client, settings):
    settings.SIGNUP_OPEN = False

    response = client.post(SIGNUP_URL, signup_data())

    assert not User.objects.exists()
    assert response.status_code == 200
    assert b"closed" in response.content.lower()


def test_two_businesses_with_the_same_name_get_different_addresses(client):
    client.post(SIGNUP_URL, signup_data())
    client.logout()
    client.post(SIGNUP_URL, signup_data(email="other@example.com"))

    assert sorted(Tenant.objects.values_list("slug", flat=True)) == [
        "acme-dental",
        "acme-dental-2",
    ]
