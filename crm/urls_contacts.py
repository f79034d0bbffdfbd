from django.urls import path

from tenants.views import section_placeholder

urlpatterns = [
    path("contacts/", section_placeholder("contacts"), name="contacts"),
]
