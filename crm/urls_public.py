"""CRM addresses outside /app/: lead webhooks (signed or keyed) and private calendar feeds
(secret token in the address). Nothing here uses a session."""

from django.urls import path

from crm.views import feeds, lead_hooks

app_name = "crm_public"

urlpatterns: list = [
    path("calendar/feeds/<str:token>.ics", feeds.calendar_feed, name="calendar_feed"),
    path("hooks/leads/<str:token>/", lead_hooks.lead_hook, name="lead_hook"),
]
