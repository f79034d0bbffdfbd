from django.urls import path

from privacy.views import access_log, centre, deletion, requests, retention, security

app_name = "privacy"

urlpatterns = [
    path("", centre.centre, name="centre"),
    path("sub-processors.txt", centre.subprocessors_text, name="subprocessors_text"),
    path("retention/", retention.retention_page, name="retention"),
    path("security/", security.security_page, name="security"),
    path("incidents/", security.incidents_page, name="incidents"),
    path("incidents/<int:incident_id>/", security.incident, name="incident"),
    path("incidents/<int:incident_id>/close/", security.incident_close, name="incident_close"),
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
        "requests/<int:data_request_id>/run-again/",
        requests.request_run_again,
        name="request_run_again",
    ),
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
    path("delete-business/", deletion.deletion_page, name="deletion"),
    path("delete-business/restore/", deletion.deletion_restore, name="deletion_restore"),
    path("delete-business/export/", deletion.export_status, name="business_export"),
    path(
        "delete-business/export/prepare/", deletion.export_prepare, name="business_export_prepare"
    ),
    path(
        "delete-business/exports/<int:business_export_id>/download/",
        deletion.export_download,
        name="business_export_download",
    ),
]
