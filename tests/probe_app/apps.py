from django.apps import AppConfig


class ProbeAppConfig(AppConfig):
    """Test-only models that exercise the tenant-owned base (installed only under pytest)."""

    name = "tests.probe_app"
    label = "probe"
