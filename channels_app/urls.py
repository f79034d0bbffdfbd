from django.urls import include, path

from tenants.views import section_placeholder

app_name = "channels"

# Everything stays in the `channels` namespace: {% url 'channels:inbox' tenant_slug=… %}.
urlpatterns = [
    path("", include("channels_app.urls_inbox")),
    path("", include("channels_app.urls_channels")),
    path("bot/", section_placeholder("bot"), name="bot"),
]
