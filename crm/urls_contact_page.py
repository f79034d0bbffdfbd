from django.urls import path

from crm.views import contact_page

urlpatterns = [
    path("contacts/<int:contact_id>/", contact_page.contact_detail, name="contact"),
]
