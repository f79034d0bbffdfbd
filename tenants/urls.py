"""Account-level pages that are not inside one business."""

from django.urls import path

from tenants import views

app_name = "tenants"

urlpatterns = [
    path("app/", views.home, name="home"),
    path("app/new/", views.new_tenant, name="new"),
    path("invitations/<str:token>/", views.invitation, name="invitation"),
    path("healthz", views.healthz, name="healthz"),
]
