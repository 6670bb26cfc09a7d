"""gateway/settings.py: `check --deploy` is clean with the production environment the README
documents, production refuses to start without its required settings, development needs none,
and the admin login is throttled (django-axes) in the real server."""

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import httpx

from tests.integration.resilience_support import ADMIN_PASSWORD, superuser

ROOT = Path(__file__).resolve().parents[2]

# README "Production": the documented environment.
PRODUCTION = {
    "GATEWAY_ENV": "production",
    "SECRET_KEY": secrets.token_urlsafe(50),
    "GATEWAY_ENCRYPTION_KEY": secrets.token_urlsafe(32),
    "ALLOWED_HOSTS": "gateway.example.com",
    "CSRF_TRUSTED_ORIGINS": "https://gateway.example.com",
    "GATEWAY_PROXY_SSL_HEADER": "X-Forwarded-Proto",
}


def manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    """manage.py in a clean environment (nothing from this process, no .gateway.local.env values win)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("GATEWAY_", "DJANGO_")) and k not in (
        "SECRET_KEY", "ALLOWED_HOSTS", "CSRF_TRUSTED_ORIGINS", "DEBUG", "DATABASE_URL")}
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env={**base, **env},
                          capture_output=True, text=True, timeout=60)


def test_check_deploy_is_clean_with_the_documented_production_environment():
    result = manage("check", "--deploy", "--fail-level", "WARNING", **PRODUCTION)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_without_production_the_deploy_check_warns():
    result = manage("check", "--deploy", "--fail-level", "WARNING", SECRET_KEY=PRODUCTION["SECRET_KEY"])
    assert result.returncode != 0
    for check in ("security.W004", "security.W008", "security.W012", "security.W016"):  # HSTS, SSL, cookies
        assert check in result.stderr, check


def test_development_needs_no_configuration():
    result = manage("check")
    assert result.returncode == 0, result.stderr


def test_production_refuses_to_start_without_its_settings():
    cases = {
        "SECRET_KEY": {k: v for k, v in PRODUCTION.items() if k != "SECRET_KEY"},
        "ALLOWED_HOSTS": {k: v for k, v in PRODUCTION.items() if k != "ALLOWED_HOSTS"},
        "ALLOWED_HOSTS to the": {**PRODUCTION, "ALLOWED_HOSTS": "*"},
        "DEBUG": {**PRODUCTION, "DEBUG": "true"},
    }
    for message, env in cases.items():
        result = manage("check", **env)
        assert result.returncode != 0 and "ImproperlyConfigured" in result.stderr, message
        assert message in result.stderr, (message, result.stderr[-500:])


def test_admin_logins_are_throttled(gateway):
    user = superuser()
    with httpx.Client(base_url=gateway, timeout=10) as client:
        def login(password: str) -> httpx.Response:
            page = client.get("/admin/login/", params={"next": "/admin/"})
            token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
            return client.post("/admin/login/", data={"csrfmiddlewaretoken": token, "username": user.username,
                                                      "password": password, "next": "/admin/"})

        for _ in range(4):
            assert login("wrong").status_code == 200  # the form again, with an error
        assert login("wrong").status_code == 429  # the 5th failure locks
        locked = login(ADMIN_PASSWORD)
        assert locked.status_code == 429 and "sessionid" not in client.cookies  # even the right password


def test_an_unwritable_journal_directory_is_reported(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = manage("check", GATEWAY_LOG_JOURNAL_DIR=str(blocker / "journal"))
    assert "routing.W003" in result.stderr
    assert "routing.W003" not in manage("check", GATEWAY_LOG_JOURNAL_DIR=str(tmp_path / "j")).stderr
