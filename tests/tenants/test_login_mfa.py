"""Logging in and out, rate limiting, passwords, two-factor authentication, Google's button."""

import os
import re
import subprocess
import sys
import time

import pytest
from allauth.mfa.models import Authenticator
from allauth.mfa.recovery_codes.internal.auth import RecoveryCodes
from allauth.mfa.totp.internal.auth import SECRET_SESSION_KEY, format_hotp_value, hotp_value
from django.conf import settings
from django.core import mail

from tenants.models import User
from tests.factories import DEFAULT_PASSWORD, TenantFactory, UserFactory, member

pytestmark = pytest.mark.django_db

LOGIN_URL = "/accounts/login/"
NEW_PASSWORD = "another-long-passphrase-77"


@pytest.fixture
def person():
    tenant = TenantFactory(name="Clinic", slug="clinic")
    return member(tenant, email="person@example.com")


def log_in(client, email="person@example.com", password=DEFAULT_PASSWORD, **extra):
    return client.post(LOGIN_URL, {"login": email, "password": password, **extra})


def is_logged_in(client) -> bool:
    return "_auth_user_id" in client.session


def totp_code(secret: str) -> str:
    return format_hotp_value(hotp_value(secret, int(time.time()) // 30))


def test_the_login_page_renders_with_our_layout(client):
    response = client.get(LOGIN_URL)

    assert response.status_code == 200
    body = response.content.decode()
    assert 'class="form card"' in body
    assert 'name="login"' in body and 'name="password"' in body
    assert "/accounts/password/reset/" in body
    assert "style=" not in body
    assert "<script>" not in body


def test_a_verified_person_logs_in_and_lands_in_their_business(client, person):
    response = log_in(client)

    assert response.status_code == 302
    assert is_logged_in(client)
    assert client.get(response["Location"])["Location"] == "/app/clinic/"


def test_a_person_with_no_business_is_asked_to_create_one(client):
    UserFactory(email="lonely@example.com")

    response = log_in(client, email="lonely@example.com")

    assert client.get(response["Location"])["Location"] == "/app/new/"


def test_a_wrong_password_is_refused(client, person):
    response = log_in(client, password="not-the-password")

    assert response.status_code == 200
    assert not is_logged_in(client)
    assert response.context["form"].errors


def test_logout(client, person):
    log_in(client)

    response = client.post("/accounts/logout/")

    assert response.status_code == 302
    assert not is_logged_in(client)


def test_repeated_failures_are_rate_limited(client, person):
    for _attempt in range(5):
        response = log_in(client, password="not-the-password")
        assert "Too many failed login attempts" not in response.content.decode()

    # Even the right password is refused for a while now.
    response = log_in(client)

    assert response.status_code == 200
    assert "Too many failed login attempts" in response.content.decode()
    assert not is_logged_in(client)


def test_password_change(client, person):
    log_in(client)

    response = client.post(
        "/accounts/password/change/",
        {"oldpassword": DEFAULT_PASSWORD, "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
    )

    assert response.status_code == 302
    person.refresh_from_db()
    assert person.check_password(NEW_PASSWORD)


def test_password_change_refuses_a_wrong_current_password_and_weak_ones(client, person):
    log_in(client)

    wrong = client.post(
        "/accounts/password/change/",
        {"oldpassword": "nope", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
    )
    weak = client.post(
        "/accounts/password/change/",
        {"oldpassword": DEFAULT_PASSWORD, "password1": "12345678", "password2": "12345678"},
    )

    assert "oldpassword" in wrong.context["form"].errors
    assert "password1" in weak.context["form"].errors
    person.refresh_from_db()
    assert person.check_password(DEFAULT_PASSWORD)


def test_password_reset(client, person):
    response = client.post("/accounts/password/reset/", {"email": "person@example.com"})
    assert response.status_code == 302
    assert len(mail.outbox) == 1
    path = re.search(
        r"https?://testserver(/accounts/password/reset/key/\S+/)", mail.outbox[0].body
    )[1]

    form_page = client.get(path, follow=True)
    assert form_page.status_code == 200
    set_password_path = form_page.redirect_chain[-1][0]
    done = client.post(set_password_path, {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD})

    assert done.status_code == 302
    person.refresh_from_db()
    assert person.check_password(NEW_PASSWORD)
    assert log_in(client, password=NEW_PASSWORD).status_code == 302
    assert is_logged_in(client)


def test_password_reset_of_an_unknown_address_reveals_nothing(client):
    response = client.post("/accounts/password/reset/", {"email": "nobody@example.com"})

    assert response.status_code == 302
    assert User.objects.count() == 0


def reauthenticate(client, path: str) -> None:
    """MFA changes ask for the password again, even right after logging in."""
    response = client.get(path)
    assert response["Location"].startswith("/accounts/reauthenticate/")
    response = client.post(response["Location"], {"password": DEFAULT_PASSWORD})
    assert response["Location"] == path


def activate_totp(client) -> str:
    reauthenticate(client, "/accounts/2fa/totp/activate/")
    page = client.get("/accounts/2fa/totp/activate/")
    assert page.status_code == 200
    assert 'class="form card"' in page.content.decode()
    secret = client.session[SECRET_SESSION_KEY]
    response = client.post("/accounts/2fa/totp/activate/", {"code": totp_code(secret)})
    assert response.status_code == 302, response.content.decode()
    return secret


def test_enabling_totp_then_login_asks_for_the_code(client, person):
    log_in(client)
    secret = activate_totp(client)
    assert Authenticator.objects.filter(user=person, type=Authenticator.Type.TOTP).exists()
    client.post("/accounts/logout/")

    response = log_in(client)

    assert response["Location"] == "/accounts/2fa/authenticate/"
    assert not is_logged_in(client)
    wrong = client.post("/accounts/2fa/authenticate/", {"code": "000000"})
    assert not is_logged_in(client)
    assert wrong.status_code == 200
    assert wrong.context["form"].errors

    response = client.post("/accounts/2fa/authenticate/", {"code": totp_code(secret)})

    assert response.status_code == 302
    assert is_logged_in(client)


def test_a_totp_code_works_only_once(client, person):
    log_in(client)
    secret = activate_totp(client)
    client.post("/accounts/logout/")
    log_in(client)
    # The same code twice (computing it again could land in the next 30-second period and
    # give a new, valid code).
    code = totp_code(secret)
    client.post("/accounts/2fa/authenticate/", {"code": code})
    client.post("/accounts/logout/")

    log_in(client)
    response = client.post("/accounts/2fa/authenticate/", {"code": code})

    assert response.status_code == 200
    assert not is_logged_in(client)


def test_recovery_codes_log_in_once_each(client, person):
    log_in(client)
    activate_totp(client)
    codes = RecoveryCodes(
        Authenticator.objects.get(user=person, type=Authenticator.Type.RECOVERY_CODES)
    ).get_unused_codes()
    assert len(codes) > 1
    page = client.get("/accounts/2fa/recovery-codes/")
    assert codes[0] in page.content.decode()
    client.post("/accounts/logout/")

    log_in(client)
    response = client.post("/accounts/2fa/authenticate/", {"code": codes[0]})
    assert response.status_code == 302
    assert is_logged_in(client)
    client.post("/accounts/logout/")

    log_in(client)
    reused = client.post("/accounts/2fa/authenticate/", {"code": codes[0]})
    assert not is_logged_in(client)
    assert reused.status_code == 200
    client.post("/accounts/2fa/authenticate/", {"code": codes[1]})
    assert is_logged_in(client)


def test_the_security_pages_render(client, person):
    log_in(client)
    reauthenticate(client, "/accounts/2fa/totp/activate/")

    for path in ("/accounts/2fa/", "/accounts/2fa/totp/activate/", "/accounts/password/change/"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert "style=" not in response.content.decode()


@pytest.mark.parametrize(
    "path",
    [
        "/accounts/signup/",
        "/accounts/password/reset/",
        "/accounts/password/reset/done/",
        "/accounts/confirm-email/",
        "/accounts/confirm-email/not-a-key/",
        "/accounts/password/reset/key/0-bad/",
    ],
)
def test_the_account_pages_render_inside_our_layout(client, path):
    response = client.get(path)

    assert response.status_code == 200
    body = response.content.decode()
    assert 'class="skip-link"' in body  # our base template
    assert "<h1" in body
    assert "style=" not in body
    assert "<script>" not in body


@pytest.mark.parametrize(
    "path",
    ["/accounts/logout/", "/accounts/password/change/", "/accounts/2fa/", "/accounts/email/"],
)
def test_the_signed_in_account_pages_render_inside_our_layout(client, person, path):
    log_in(client)

    response = client.get(path)

    assert response.status_code == 200
    body = response.content.decode()
    assert 'class="skip-link"' in body
    assert "style=" not in body


def test_no_google_button_without_google_credentials(client):
    assert settings.GOOGLE_LOGIN_ENABLED is False

    for path in (LOGIN_URL, "/accounts/signup/"):
        response = client.get(path)
        assert response.context["google_login_enabled"] is False
        assert "Sign in with Google" not in response.content.decode()


GOOGLE_PROBE = """
import django
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
from django.test import Client
client = Client(HTTP_HOST="localhost")
for path in ("/accounts/login/", "/accounts/signup/", "/accounts/google/login/?process=login"):
    response = client.get(path)
    print(path, response.status_code, "Sign in with Google" in response.content.decode())
"""


def test_the_google_button_appears_when_google_is_configured():
    # Google's provider app is installed at start-up only when its credentials are set, so this
    # runs the configured application in a fresh process (with an in-memory database).
    env = {
        **os.environ,
        "GOOGLE_CLIENT_ID": "client-id.apps.googleusercontent.com",
        "GOOGLE_CLIENT_SECRET": "client-secret",
        "DEBUG": "1",
        "SALESOS_TESTING": "1",
        "DATABASE_URL": "sqlite://:memory:",
        "DJANGO_SETTINGS_MODULE": "salesos.settings",
        "PYTHONPATH": str(settings.BASE_DIR),
    }
    result = subprocess.run(
        [sys.executable, "-c", GOOGLE_PROBE],
        env=env,
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "/accounts/login/ 200 True",
        "/accounts/signup/ 200 True",
        "/accounts/google/login/?process=login 200 False",
    ]
