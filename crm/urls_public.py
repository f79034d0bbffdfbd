"""CRM addresses outside /app/: lead webhooks (signed or keyed) and private calendar feeds
(secret token in the address). Nothing here uses a session."""

from django.urls import path  # noqa: F401

app_name = "crm_public"

urlpatterns: list = []
