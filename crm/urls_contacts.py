from django.urls import path

from crm.views import contacts

urlpatterns = [
    path("contacts/", contacts.contact_list, name="contacts"),
    path("contacts/new/", contacts.contact_new, name="contact_new"),
    path("contacts/export.csv", contacts.contact_export, name="contacts_export"),
    path("contacts/segments/", contacts.segment_list, name="segments"),
    path("contacts/segments/new/", contacts.segment_save, name="segment_save"),
    path("contacts/segments/<int:segment_id>/", contacts.segment_detail, name="segment"),
    path(
        "contacts/segments/<int:segment_id>/delete/",
        contacts.segment_delete,
        name="segment_delete",
    ),
    path("contacts/attributes/", contacts.attribute_list, name="attributes"),
    path(
        "contacts/attributes/<int:contact_attribute_id>/",
        contacts.attribute_edit,
        name="attribute",
    ),
    path(
        "contacts/attributes/<int:contact_attribute_id>/move/",
        contacts.attribute_move,
        name="attribute_move",
    ),
    path(
        "contacts/attributes/<int:contact_attribute_id>/delete/",
        contacts.attribute_delete,
        name="attribute_delete",
    ),
]
