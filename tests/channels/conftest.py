"""Fixtures of the messaging tests."""

from __future__ import annotations

import pytest

from salesos.celery import app as celery_app


@pytest.fixture
def eager_celery(settings):
    """Celery tasks run in the test, at the moment they are enqueued (as `make run` does)."""
    settings.CELERY_TASK_ALWAYS_EAGER = True
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = previous
