from django.urls import path

from tenants.views import section_placeholder

urlpatterns = [
    path("calendar/", section_placeholder("calendar"), name="calendar"),
]
