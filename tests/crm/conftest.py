from __future__ import annotations

import pytest

from salesos.celery import app as celery_app


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
