"""Deployment health shared through Redis (when REDIS_URL is set).

Each process runs its own breaker; whenever one changes a deployment's state (cooled,
or healthy again) it publishes it to `<GATEWAY_REDIS_PREFIX>health:<id>`, and every process pulls all
deployments' states on its route-refresh tick and adopts the newer ones. So a
deployment one process found failing is skipped by all of them within a tick.

Every Redis call goes through a circuit (routing/resilience/redis_circuit.py): after a
timeout or a connection error Redis is not asked for a while, and each process keeps
its own breaker's view meanwhile. The admin's synchronous read shares that circuit.
"""

import asyncio
import logging

from django.conf import settings

from routing.resilience.breaker import Health, breaker
from routing.resilience.redis_circuit import RedisCircuit, Skipped

log = logging.getLogger(__name__)
TTL = 24 * 3600
_redis = None
circuit = RedisCircuit("shared health")
_writes: set[asyncio.Task] = set()  # publishes in flight (a task nobody references may be dropped)


def _client():
    global _redis
    if _redis is None and settings.REDIS_URL:
        import redis.asyncio as aioredis

        _redis = aioredis.from_url(settings.REDIS_URL, socket_timeout=0.5, socket_connect_timeout=0.5,
                                   decode_responses=True)
    return _redis


def _key(dep_id: int) -> str:
    return f"{settings.GATEWAY['REDIS_PREFIX']}health:{dep_id}"


def _publish(dep_id: int, h: Health) -> None:
    client = _client()
    if client is None:
        return
    fields = {"state": h.state, "cooled_until": h.cooled_until, "last_error": h.last_error[:500],
              "last_error_at": h.last_error_at, "changed_at": h.changed_at, "auth_failed": int(h.auth_failed)}
    try:
        task = asyncio.get_running_loop().create_task(_write(client, dep_id, fields))
    except RuntimeError:  # no loop (admin thread): nothing to share from there
        return
    _writes.add(task)
    task.add_done_callback(_writes.discard)


async def _write(client, dep_id: int, fields: dict) -> None:
    async def write():
        async with client.pipeline(transaction=False) as pipe:
            pipe.hset(_key(dep_id), mapping=fields).expire(_key(dep_id), TTL)
            return await pipe.execute()

    try:
        await circuit.call(write)
    except Skipped:
        pass
    except Exception as exc:
        log.warning("could not share health of deployment %s: %s", dep_id, exc)


async def pull(dep_ids) -> None:
    client = _client()
    if client is None:
        return
    ids = list(dep_ids)

    async def read():
        async with client.pipeline(transaction=False) as pipe:
            for dep_id in ids:
                pipe.hgetall(_key(dep_id))
            return await pipe.execute()

    try:
        rows = await circuit.call(read)
    except Skipped:
        return
    except Exception as exc:
        log.warning("could not read shared health: %s", exc)
        return
    for dep_id, row in zip(ids, rows):
        if row:
            breaker.adopt(dep_id, state=row.get("state", "healthy"), cooled_until=float(row.get("cooled_until") or 0),
                          last_error=row.get("last_error", ""), last_error_at=float(row.get("last_error_at") or 0),
                          changed_at=float(row.get("changed_at") or 0), auth_failed=row.get("auth_failed") == "1")


def read_sync(dep_id: int) -> dict | None:
    """For the admin (a worker thread): the shared state, if any."""
    if not settings.REDIS_URL or not circuit.allow():
        return None
    import redis

    try:
        row = redis.Redis.from_url(settings.REDIS_URL, decode_responses=True, socket_timeout=0.5,
                                   socket_connect_timeout=0.5).hgetall(_key(dep_id))
    except Exception as exc:
        circuit.failed(exc)
        return None
    circuit.succeeded()
    return row or None


breaker.on_change = _publish
