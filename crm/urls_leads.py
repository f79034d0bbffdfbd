from django.urls import path

from crm.views import leads

urlpatterns: list = [
    path("settings/leads/", leads.lead_sources, name="lead_sources"),
    path("settings/leads/add/", leads.lead_source_add, name="lead_source_add"),
    path("settings/leads/<int:lead_source_id>/", leads.lead_source, name="lead_source"),
    path(
        "settings/leads/<int:lead_source_id>/toggle/",
        leads.lead_source_toggle,
        name="lead_source_toggle",
    ),
]
