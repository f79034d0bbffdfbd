"""The Celery application. Tasks take a tenant id first and activate it (see tenants.context)."""

import os

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "salesos.settings")

app = Celery("salesos")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.task_prerun.connect
@signals.task_postrun.connect
def _forget_tenant(task=None, **kwargs):
    # A worker process runs many tenants' tasks: each starts and ends with no tenant active.
    # An eager task (development, tests) runs inside its caller, whose tenant must survive it.
    if task is not None and task.request.is_eager:
        return
    from tenants.context import clear

    clear()
