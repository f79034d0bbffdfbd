from django.urls import include, path

from tenants.views import section_placeholder

app_name = "crm"

# One URL module per area, all in the `crm` namespace: {% url 'crm:contacts' tenant_slug=… %}.
urlpatterns = [
    path("", include("crm.urls_contacts")),
    path("", include("crm.urls_contact_page")),
    path("", include("crm.urls_tasks")),
    path("", include("crm.urls_companies")),
    path("", include("crm.urls_deals")),
    path("", include("crm.urls_calendar")),
    path("", include("crm.urls_imports")),
    path("", include("crm.urls_leads")),
    path("campaigns/", section_placeholder("campaigns"), name="campaigns"),
]
