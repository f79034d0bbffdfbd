from django.urls import path

from tenants.views import section_placeholder

urlpatterns = [
    path("", section_placeholder("bot"), name="bot"),
]
