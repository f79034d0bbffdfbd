"""The REST API, /api/v1/ (per-business API keys, OpenAPI schema at /api/v1/schema/)."""

from django.urls import path
from drf_spectacular.views import SpectacularAPIView

from privacy import api as privacy_api

urlpatterns = [
    path("v1/schema/", SpectacularAPIView.as_view(), name="api_schema"),
    path("v1/data-requests/", privacy_api.DataRequestList.as_view(), name="api_data_requests"),
    path(
        "v1/data-requests/<int:data_request_id>/",
        privacy_api.DataRequestDetail.as_view(),
        name="api_data_request",
    ),
    path(
        "v1/data-requests/<int:data_request_id>/export/",
        privacy_api.DataRequestExport.as_view(),
        name="api_data_request_export",
    ),
]
