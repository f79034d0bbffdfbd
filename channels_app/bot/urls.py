"""The bot pages (in the `channels` namespace, under /app/<tenant_slug>/bot/)."""

from django.urls import path

from channels_app.bot import views

# Object ids are named `<model_name>_id` (the URL-walk isolation test maps them to models).
urlpatterns = [
    path("", views.bot, name="bot"),
    path("try/", views.bot_try, name="bot_try"),
    path("usage/", views.bot_usage, name="bot_usage"),
    path("channels/<int:channel_id>/", views.bot_channel, name="bot_channel"),
    path("channels/<int:channel_id>/delete/", views.bot_channel_delete, name="bot_channel_delete"),
    path("conversations/<int:conversation_id>/resume/", views.bot_resume, name="bot_resume"),
]
