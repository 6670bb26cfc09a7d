"""System checks that catch unsafe production settings at startup (`manage.py check --deploy`
and every management command)."""

import os

from django.conf import settings
from django.core.checks import Warning, register


@register()
def gateway_secrets(app_configs, **kwargs):
    problems = []
    if not [k for k in settings.GATEWAY["ENCRYPTION_KEYS"] if k]:
        problems.append(Warning(
            "GATEWAY_ENCRYPTION_KEY is not set; upstream keys are encrypted with a key derived from SECRET_KEY.",
            hint="Set GATEWAY_ENCRYPTION_KEY to a long random string (keep old ones after a comma to rotate).",
            id="routing.W001"))
    if settings.SECRET_KEY.startswith("insecure-dev-only"):
        problems.append(Warning("SECRET_KEY is the development default.", hint="Set SECRET_KEY.", id="routing.W002"))
    return problems


@register()
def request_log_journal(app_configs, **kwargs):
    """Rows are journaled before a request ends: a journal directory the process cannot write
    means rows live in memory only (they still reach the database, but not across a crash)."""
    path = settings.GATEWAY["LOG_JOURNAL_DIR"]
    existing = path
    while existing and not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if existing and os.path.isdir(existing) and os.access(existing, os.W_OK | os.X_OK):
        return []  # the directory, or the nearest parent it will be created in, is writable
    return [Warning(f"The request-log journal directory {path} cannot be written.",
                    hint="Point GATEWAY_LOG_JOURNAL_DIR at a writable local directory.", id="routing.W003")]
