"""Pages of one business: /app/<tenant-slug>/…"""

from django.urls import path

from tenants import views

app_name = "tenant"

urlpatterns = [
    path("", views.tenant_home, name="home"),
    path("settings/", views.tenant_settings, name="settings"),
    path("settings/members/", views.members, name="members"),
    path("settings/members/invite/", views.invite, name="invite"),
    path("settings/members/<int:membership_id>/role/", views.member_role, name="member_role"),
    path("settings/members/<int:membership_id>/remove/", views.member_remove, name="member_remove"),
    path("settings/api-keys/", views.api_keys, name="api_keys"),
    path(
        "settings/api-keys/<int:api_key_id>/revoke/",
        views.api_key_revoke,
        name="api_key_revoke",
    ),
    path(
        "settings/invitations/<int:invitation_id>/revoke/",
        views.invitation_revoke,
        name="invitation_revoke",
    ),
]
