from django.contrib import admin
from django.urls import include, path

from tenants import views as tenant_views

# Everything a business sees lives under /app/<tenant-slug>/: the tenant middleware resolves
# the slug, checks membership (404 for non-members) and activates the tenant.
tenant_patterns = [
    path("", include("tenants.urls_tenant")),
    path("", include("channels_app.urls")),
    path("", include("crm.urls")),
    path("privacy/", include("privacy.urls")),
]

urlpatterns = [
    path("", tenant_views.landing, name="landing"),
    path("admin/", admin.site.urls),
    path("accounts/", include("allauth.urls")),
    path("hooks/", include("channels_app.urls_hooks")),
    path("api/", include("salesos.api_urls")),
    path("", include("crm.urls_public")),
    path("", include("tenants.urls")),
    path("app/<slug:tenant_slug>/", include(tenant_patterns)),
]

handler400 = "tenants.views.bad_request"
handler403 = "tenants.views.permission_denied"
handler404 = "tenants.views.page_not_found"
handler500 = "tenants.views.server_error"
