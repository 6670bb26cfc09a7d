"""The benchmark's own gateway database: migrate, one route to the fake upstream, one client key.

Runs inside the orchestrator (Django set up from the same environment the gateway gets,
so the deployment's upstream key decrypts there) and doubles as the separate connection
that counts RequestLog rows written by the gateway's log writer.
"""

import os
import time

GROUP = "bench"
UPSTREAM_MODEL = "bench-model"
UPSTREAM_KEY = "bench-upstream-key"


def setup(upstream_url: str) -> str:
    """Create (or repoint) model group "bench" → Azure deployment at `upstream_url`; return a new client key."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gateway.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)
    from routing import services
    from routing.models import Deployment, ModelGroup, Provider

    group, _ = ModelGroup.objects.update_or_create(
        name=GROUP, defaults={"description": "bench: fake upstream", "enabled": True})
    policy_for = getattr(services, "default_policy_for", None)  # the Azure preset, as the admin would attach it
    dep, _ = Deployment.objects.update_or_create(
        group=group, name="azure-bench",
        defaults={"provider": Provider.AZURE, "api_base": upstream_url, "upstream_model": UPSTREAM_MODEL,
                  "api_version": "", "enabled": True, "policy": policy_for(Provider.AZURE) if policy_for else None})
    dep.api_key = UPSTREAM_KEY
    dep.save()
    _, full = services.api_key_create(name="bench", allowed_groups=[group])
    return full


def log_rows() -> int:
    from django.db import close_old_connections

    from routing.models import RequestLog

    close_old_connections()
    return RequestLog.objects.count()


def wait_log_rows(before: int, expect: int | None = None, timeout: float = 15.0, settle: float = 1.0) -> int:
    """Poll until the row count reaches `before + expect`, or stops growing for `settle` seconds."""
    deadline = time.monotonic() + timeout
    last, since = log_rows(), time.monotonic()
    while time.monotonic() < deadline:
        if expect is not None and last - before >= expect:
            break
        time.sleep(0.25)
        now = log_rows()
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= settle and (expect is None or last > before):
            break
    return last
