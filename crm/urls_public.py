"""CRM addresses outside /app/: lead webhooks (signed or keyed) and private calendar feeds
(secret token in the address). Nothing here uses a session."""

from django.urls import path

from crm.views import feeds

app_name = "crm_public"

urlpatterns: list = [
    path("calendar/feeds/<str:token>.ics", feeds.calendar_feed, name="calendar_feed"),
]
