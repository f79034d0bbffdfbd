from django.urls import path

from privacy.views import access_log, requests
from tenants.views import section_placeholder

app_name = "privacy"

urlpatterns = [
    path("", section_placeholder("privacy"), name="centre"),
    path("access-log/", access_log.access_log_page, name="access_log"),
    path("access-log/export.csv", access_log.access_log_export, name="access_log_export"),
    path("requests/", requests.requests_page, name="requests"),
    path("requests/new/", requests.request_new, name="request_new"),
    path("requests/<int:data_request_id>/", requests.request_detail, name="request_detail"),
    path(
        "requests/<int:data_request_id>/confirm/",
        requests.request_confirm,
        name="request_confirm",
    ),
    path("requests/<int:data_request_id>/reject/", requests.request_reject, name="request_reject"),
    path(
        "requests/<int:data_request_id>/export/",
        requests.request_download,
        name="request_download",
    ),
    path(
        "requests/from-message/<int:message_id>/",
        requests.request_from_message,
        name="request_from_message",
    ),
]
