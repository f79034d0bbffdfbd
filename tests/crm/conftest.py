from __future__ import annotations

import pytest
from django.urls import reverse

from salesos.celery import app as celery_app
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


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    """Uploaded files and error reports go to a directory of the test's own."""
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return tmp_path / "media"


@pytest.fixture
def eager_celery(settings):
    """Celery tasks run in the test, at the moment they are enqueued (as `make run` does)."""
    settings.CELERY_TASK_ALWAYS_EAGER = True
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = previous
