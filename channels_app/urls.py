from django.urls import path

from tenants.views import section_placeholder

app_name = "channels"

urlpatterns = [
    path("inbox/", section_placeholder("inbox"), name="inbox"),
    path("channels/", section_placeholder("channels"), name="channels"),
    path("bot/", section_placeholder("bot"), name="bot"),
]
