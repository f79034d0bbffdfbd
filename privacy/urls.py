from django.urls import path

from privacy.views import access_log
from tenants.views import section_placeholder

app_name = "privacy"

urlpatterns = [
    path("", section_placeholder("privacy"), name="centre"),
    path("access-log/", access_log.access_log_page, name="access_log"),
    path("access-log/export.csv", access_log.access_log_export, name="access_log_export"),
]
