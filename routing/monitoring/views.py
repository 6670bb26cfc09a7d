"""/healthz, /readyz and /metrics: async views that never raise and never hang.

gateway/asgi.py serves them with the lean API handler, not with the admin's middleware, for two
reasons. A probe then never waits behind an admin page: Django runs classic middleware on one
shared thread, and a CSV export can hold it for seconds. And /healthz costs no thread hop.

- `/healthz`: the process answers. Nothing else is checked, so a liveness probe never restarts
  a gateway because its database is away.
- `/readyz`: 200 `{"status": "ready", "checks": {...}}`, or 503 with `"failed": [names]`
  (readiness.py).
- `/metrics`: the Prometheus text format of all workers. With GATEWAY_METRICS_TOKEN set, the
  scrape needs `Authorization: Bearer <token>` (else 401). Without it, only loopback clients may
  scrape (else 403). Behind a proxy on the same host, uvicorn's proxy headers (trusted from
  127.0.0.1 by default) make the client address the real one.
"""

import asyncio
import hmac
import ipaddress
import logging

import orjson
from django.conf import settings
from django.http import HttpResponse
from django.views.decorators.http import require_safe
from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4

from routing.monitoring import readiness
from routing.monitoring.observer import observer

log = logging.getLogger(__name__)
SCRAPE_TIMEOUT = 10.0


def _json(data: dict, status: int = 200) -> HttpResponse:
    response = HttpResponse(orjson.dumps(data), status=status, content_type="application/json")
    response["Cache-Control"] = "no-store"
    return response


async def healthz(request) -> HttpResponse:
    return _json({"status": "ok"})


@require_safe
async def readyz(request) -> HttpResponse:
    try:
        checks = await readiness.checks()
    except Exception:  # never a 500: a probe that cannot tell says "not ready"
        log.exception("readiness checks failed")
        return _json({"status": "not_ready", "failed": ["readyz"]}, 503)
    failed = [name for name, check in checks.items() if not check["ok"]]
    if failed:
        return _json({"status": "not_ready", "failed": failed, "checks": checks}, 503)
    return _json({"status": "ready", "checks": checks})


@require_safe
async def metrics(request) -> HttpResponse:
    refused = _refusal(request)
    if refused is not None:
        return refused
    try:
        body = await asyncio.wait_for(asyncio.to_thread(observer.exposition), SCRAPE_TIMEOUT)
    except Exception:
        log.exception("metrics exposition failed")
        return HttpResponse(b"metrics unavailable\n", status=503, content_type="text/plain")
    return HttpResponse(body, content_type=CONTENT_TYPE_PLAIN_0_0_4)


def _refusal(request) -> HttpResponse | None:
    token = settings.GATEWAY["METRICS_TOKEN"]
    if token:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode()):
            return None
        response = HttpResponse(b"/metrics needs 'Authorization: Bearer <GATEWAY_METRICS_TOKEN>'.\n", status=401,
                                content_type="text/plain")
        response["WWW-Authenticate"] = "Bearer"
        return response
    if _loopback(request.META.get("REMOTE_ADDR", "")):
        return None
    return HttpResponse(b"/metrics is served to loopback clients only; set GATEWAY_METRICS_TOKEN to scrape it "
                        b"from other hosts.\n", status=403, content_type="text/plain")


def _loopback(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)
    return ip.is_loopback or (mapped is not None and mapped.is_loopback)
