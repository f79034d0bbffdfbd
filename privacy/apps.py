from django.apps import AppConfig
from django.utils.module_loading import autodiscover_modules


class PrivacyConfig(AppConfig):
    name = "privacy"
    verbose_name = "Privacy"

    def ready(self):
        # Each app declares its personal data in `<app>/personal_data.py` (privacy/registry.py).
        autodiscover_modules("personal_data")

        from django.contrib.auth.signals import user_login_failed

        from privacy.security import on_user_login_failed

        # A burst of failed sign-ins for a member's address is a security event (P17).
        user_login_failed.connect(on_user_login_failed, dispatch_uid="privacy-failed-login")
