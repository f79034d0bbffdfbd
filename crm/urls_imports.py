from django.urls import path

from crm.views import imports

urlpatterns: list = [
    path("contacts/import/", imports.imports, name="imports"),
    path("contacts/import/<int:contact_import_id>/", imports.import_detail, name="import_detail"),
    path(
        "contacts/import/<int:contact_import_id>/progress/",
        imports.import_progress,
        name="import_progress",
    ),
    path(
        "contacts/import/<int:contact_import_id>/resume/",
        imports.import_resume,
        name="import_resume",
    ),
    path(
        "contacts/import/<int:contact_import_id>/errors.csv",
        imports.import_errors,
        name="import_errors",
    ),
]
