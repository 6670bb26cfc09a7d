"""Deployment health as the admin shows it: the shared state (Redis) when there is one,
else this process's breaker (the admin is served by the gateway process itself)."""

from datetime import datetime, timezone

from routing.resilience import shared_health
from routing.resilience.breaker import breaker


def _when(ts) -> str | None:
    try:
        ts = float(ts)
    except (TypeError, ValueError):
        return None
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC") if ts else None


def deployment_health(dep_id: int) -> dict:
    shared = shared_health.read_sync(dep_id)
    if shared:
        cooling = shared.get("state") == "cooling" and float(shared.get("cooled_until") or 0) > datetime.now().timestamp()
        state = "cooling" if cooling else "auth_failed" if shared.get("auth_failed") == "1" else "healthy"
        return {"state": state, "last_error": shared.get("last_error", ""),
                "last_error_at": _when(shared.get("last_error_at")),
                "cooled_until": _when(shared.get("cooled_until")) if cooling else None}
    local = breaker.describe(dep_id)
    return {**local, "last_error_at": _when(local["last_error_at"]), "cooled_until": _when(local["cooled_until"])}
