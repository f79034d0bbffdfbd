from __future__ import annotations

import pytest
from django.urls import reverse

from tenants.models import Role
from tests.factories import member


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def agent_a(tenant_a):
    return member(tenant_a, role=Role.AGENT, full_name="Alex Agent")


@pytest.fixture
def owner_client(client, owner_a):
    client.force_login(owner_a)
    return client


@pytest.fixture
def agent_client(client, agent_a):
    client.force_login(agent_a)
    return client


@pytest.fixture
def url(tenant_a):
    def build(name, **kwargs):
        return reverse(name, kwargs={"tenant_slug": tenant_a.slug, **kwargs})

    return build
