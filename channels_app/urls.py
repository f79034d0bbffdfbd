from django.urls import include, path

app_name = "channels"

# Everything stays in the `channels` namespace: {% url 'channels:inbox' tenant_slug=… %}.
urlpatterns = [
    path("", include("channels_app.urls_inbox")),
    path("", include("channels_app.urls_channels")),
    path("bot/knowledge/", include("channels_app.bot.urls_knowledge")),
    path("bot/", include("channels_app.bot.urls")),
]
