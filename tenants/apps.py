from django.apps import AppConfig
from django.db.models.signals import post_migrate


class TenantsConfig(AppConfig):
    name = "tenants"
    verbose_name = "Tenants and accounts"

    def ready(self):
        from tenants import rls

        # Installed for every app, so each app's tenant-owned tables get their policy.
        post_migrate.connect(rls.install_after_migrate, dispatch_uid="tenants.rls")
