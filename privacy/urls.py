from django.urls import path

from tenants.views import section_placeholder

app_name = "privacy"

urlpatterns = [
    path("", section_placeholder("privacy"), name="centre"),
]
