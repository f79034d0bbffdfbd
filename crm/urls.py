from django.urls import path

from tenants.views import section_placeholder

app_name = "crm"

urlpatterns = [
    path("contacts/", section_placeholder("contacts"), name="contacts"),
    path("deals/", section_placeholder("deals"), name="deals"),
    path("calendar/", section_placeholder("calendar"), name="calendar"),
    path("campaigns/", section_placeholder("campaigns"), name="campaigns"),
]
