from django.urls import path

from crm.views import companies

urlpatterns = [
    path("companies/", companies.company_list, name="companies"),
    path("companies/new/", companies.company_new, name="company_new"),
    path("companies/<int:company_id>/", companies.company_detail, name="company"),
    path("companies/<int:company_id>/edit/", companies.company_edit, name="company_edit"),
    path("companies/<int:company_id>/notes/", companies.company_note_add, name="company_note_add"),
    path("companies/<int:company_id>/delete/", companies.company_delete, name="company_delete"),
]
