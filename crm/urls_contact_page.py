from django.urls import path

from crm.views import contact_page, contacts

urlpatterns = [
    path("contacts/<int:contact_id>/", contact_page.contact_detail, name="contact"),
    path("contacts/<int:contact_id>/edit/", contacts.contact_edit, name="contact_edit"),
    path("contacts/<int:contact_id>/merge/", contacts.contact_merge, name="contact_merge"),
    path(
        "contacts/<int:contact_id>/notes/", contact_page.contact_note_add, name="contact_note_add"
    ),
    path(
        "contacts/<int:contact_id>/tasks/", contact_page.contact_task_add, name="contact_task_add"
    ),
]
