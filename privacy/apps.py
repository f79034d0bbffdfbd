from django.apps import AppConfig
from django.utils.module_loading import autodiscover_modules


class PrivacyConfig(AppConfig):
    name = "privacy"
    verbose_name = "Privacy"

    def ready(self):
        # Each app declares its personal data in `<app>/personal_data.py` (privacy/registry.py).
        autodiscover_modules("personal_data")
