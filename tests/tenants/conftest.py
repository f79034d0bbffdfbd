"""Fixtures of the accounts and team tests: a clean cache (allauth counts rate limits and used
TOTP codes there) and Celery tasks that run in the test, as `make run` does."""

import pytest
from django.core.cache import cache

from salesos.celery import app as celery_app


@pytest.fixture(autouse=True)
def _clean_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def _eager_celery(settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = previous


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # The password checks are what these tests exercise, not the hash's cost.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
