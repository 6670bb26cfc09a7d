"""System checks that catch unsafe production settings at startup (`manage.py check --deploy`
and every management command)."""

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
