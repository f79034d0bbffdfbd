from django.urls import path

from crm.views import calendar

urlpatterns = [
    path("calendar/", calendar.calendar, name="calendar"),
    path("calendar/feed/", calendar.calendar_feed, name="calendar_feed"),
    path("calendar/appointments/new/", calendar.appointment_new, name="appointment_new"),
    path(
        "calendar/appointments/contacts/",
        calendar.appointment_contacts,
        name="appointment_contacts",
    ),
    path(
        "calendar/appointments/<int:appointment_id>/",
        calendar.appointment_detail,
        name="appointment",
    ),
    path(
        "calendar/appointments/<int:appointment_id>/edit/",
        calendar.appointment_edit,
        name="appointment_edit",
    ),
    path(
        "calendar/appointments/<int:appointment_id>/status/",
        calendar.appointment_status,
        name="appointment_status",
    ),
    path(
        "calendar/appointments/<int:appointment_id>/appointment.ics",
        calendar.appointment_ics,
        name="appointment_ics",
    ),
]
