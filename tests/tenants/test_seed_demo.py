"""manage.py seed_demo: a demo business someone can log in to straight away."""

from __future__ import annotations

import io
import re

import pytest
from django.core.management import call_command
from django.urls import reverse

from tenants.models import Membership, Role, Tenant, User

pytestmark = pytest.mark.django_db


def seed(*args) -> str:
    out = io.StringIO()
    call_command("seed_demo", *args, stdout=out)
    return out.getvalue()


def test_seed_creates_the_demo_business_owner_and_agent():
    output = seed()

    tenant = Tenant.objects.get(slug="demo")
    roles = dict(Membership.objects.filter(tenant=tenant).values_list("user__email", "role"))
    assert tenant.name == "Demo Dental Clinic"
    assert roles == {"demo@example.com": Role.OWNER, "agent@example.com": Role.AGENT}
    assert "http://localhost:8000/app/demo/" in output or "/app/demo/" in output
    assert "demo@example.com" in output
    assert "demo-password-123" in output


def test_seed_twice_gives_the_same_result():
    first = seed()
    second = seed()

    assert first == second
    assert Tenant.objects.filter(slug="demo").count() == 1
    assert Membership.objects.filter(tenant__slug="demo").count() == 2
    assert User.objects.filter(email="demo@example.com").count() == 1


def test_the_demo_owner_can_log_in_with_the_printed_password(client, settings):
    output = seed()
    password = re.search(r"demo@example\.com / (\S+)", output).group(1)

    response = client.post(
        reverse("account_login"), {"login": "demo@example.com", "password": password}
    )

    assert response.status_code == 302
    home = client.get(reverse("tenant:home", kwargs={"tenant_slug": "demo"}))
    assert home.status_code == 200
    assert "Demo Dental Clinic" in home.content.decode()


def test_no_superuser_is_created_by_default():
    seed()

    assert not User.objects.filter(is_superuser=True).exists()
    assert not User.objects.filter(is_staff=True).exists()


def test_with_admin_creates_a_superuser_who_can_open_the_admin(client):
    output = seed("--with-admin")
    password = re.search(r"admin@example\.com / (\S+)", output).group(1)

    assert client.login(email="admin@example.com", password=password)
    assert client.get(reverse("admin:index")).status_code == 200
    assert User.objects.get(email="admin@example.com").is_superuser
