"""Production mode: DEBUG off and the environment .env.example documents.

Each check runs `manage.py` in a fresh process with only the variables given here (no .env
file), the way a production container starts.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def production_environment(tmp_path: Path, **overrides: str) -> dict[str, str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "LANG": "C.UTF-8",
        "ENV_FILE": str(tmp_path / "no-such.env"),
        "DJANGO_SETTINGS_MODULE": "salesos.settings",
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(64),
        "ALLOWED_HOSTS": "sales.example.com",
        "CSRF_TRUSTED_ORIGINS": "https://sales.example.com",
        "PUBLIC_BASE_URL": "https://sales.example.com",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'production-check.sqlite3'}",
        "CACHE_URL": "locmemcache://production-check",
        "REDIS_URL": "redis://127.0.0.1:6379/0",
        "EMAIL_URL": "smtp+tls://mailer:secret@smtp.example.com:587",
        "DEFAULT_FROM_EMAIL": "Sales OS <no-reply@sales.example.com>",
        "FIELD_ENCRYPTION_KEYS": "k1:" + base64.b64encode(os.urandom(32)).decode(),
        "MEDIA_ROOT": str(tmp_path / "media"),
    }
    env.update(overrides)
    return env


def manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_deployment_checklist_finds_nothing_to_complain_about(tmp_path):
    result = manage(
        production_environment(tmp_path), "check", "--deploy", "--fail-level", "WARNING"
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


SHOW_SETTINGS = """
import json
from django.conf import settings as s
print(json.dumps({
    "DEBUG": s.DEBUG,
    "SESSION_COOKIE_SECURE": s.SESSION_COOKIE_SECURE,
    "CSRF_COOKIE_SECURE": s.CSRF_COOKIE_SECURE,
    "SECURE_SSL_REDIRECT": s.SECURE_SSL_REDIRECT,
    "SECURE_HSTS_SECONDS": s.SECURE_HSTS_SECONDS,
    "SECURE_HSTS_INCLUDE_SUBDOMAINS": s.SECURE_HSTS_INCLUDE_SUBDOMAINS,
    "SECURE_PROXY_SSL_HEADER": s.SECURE_PROXY_SSL_HEADER,
    "CSP": s.CONTENT_SECURITY_POLICY["DIRECTIVES"]["default-src"],
    "STATICFILES": s.STORAGES["staticfiles"]["BACKEND"],
    "CELERY_TASK_ALWAYS_EAGER": s.CELERY_TASK_ALWAYS_EAGER,
    "TESTING": s.TESTING,
}))
"""


def test_production_defaults_are_the_secure_ones(tmp_path):
    result = manage(production_environment(tmp_path), "shell", "-c", SHOW_SETTINGS)

    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout.strip().splitlines()[-1])
    assert shown["DEBUG"] is False
    assert shown["TESTING"] is False
    assert shown["SESSION_COOKIE_SECURE"] is True
    assert shown["CSRF_COOKIE_SECURE"] is True
    assert shown["SECURE_SSL_REDIRECT"] is True
    assert shown["SECURE_HSTS_SECONDS"] >= 31536000
    assert shown["SECURE_HSTS_INCLUDE_SUBDOMAINS"] is True
    assert shown["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert shown["CSP"] == ["'self'"]
    assert "Manifest" in shown["STATICFILES"]
    assert shown["CELERY_TASK_ALWAYS_EAGER"] is False


@pytest.mark.parametrize("missing", ["SECRET_KEY", "FIELD_ENCRYPTION_KEYS"])
def test_settings_refuse_to_start_without_a_secret_when_debug_is_off(tmp_path, missing):
    env = production_environment(tmp_path)
    del env[missing]

    result = manage(env, "check")

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert f"{missing} must be set" in result.stderr


def test_an_empty_secret_key_is_refused_too(tmp_path):
    result = manage(production_environment(tmp_path, SECRET_KEY=""), "check")

    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr
