"""Provider webhooks: /hooks/<provider>/<channel token>/…, outside any login or tenant URL."""

from django.urls import path

from channels_app import webhooks

urlpatterns: list = [
    path("twilio/<str:token>/inbound/", webhooks.twilio_inbound, name="hook_twilio_inbound"),
    path("twilio/<str:token>/status/", webhooks.twilio_status, name="hook_twilio_status"),
    path("meta/<str:token>/", webhooks.meta, name="hook_meta"),
    path("sandbox/<str:token>/", webhooks.sandbox, name="hook_sandbox"),
]
