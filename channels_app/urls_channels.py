"""The channels pages (in the `channels` namespace, under /app/<tenant_slug>/)."""

from django.urls import path

from channels_app.views import channels

# Object ids are named `<model_name>_id` (the URL-walk isolation test maps them to models).
urlpatterns = [
    path("channels/", channels.channels, name="channels"),
    path("channels/add/", channels.channel_add, name="channel_add"),
    path("channels/opt-out-wording/", channels.messaging_policy, name="messaging_policy"),
    path("channels/<int:channel_id>/", channels.channel, name="channel"),
    path("channels/<int:channel_id>/active/", channels.channel_active, name="channel_active"),
    path("channels/<int:channel_id>/delete/", channels.channel_delete, name="channel_delete"),
    path(
        "channels/<int:channel_id>/rotate-webhook/",
        channels.channel_rotate_webhook,
        name="channel_rotate_webhook",
    ),
    path("channels/<int:channel_id>/test/", channels.channel_test, name="channel_test"),
    path(
        "channels/<int:channel_id>/sync-templates/",
        channels.channel_sync_templates,
        name="channel_sync_templates",
    ),
]
