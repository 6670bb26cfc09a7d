"""The gateway's own store of bridged responses (`BridgedResponse` rows): what lets
`GET /v1/responses/{id}` and `previous_response_id` work when the upstream speaks only Chat.

- A bridged response the client asked to store (`store` is not false) is saved before the
  client gets it whole (before the JSON answer, before `response.completed`), so a follow-up
  sent the moment it arrives, to any gateway process, finds it. A failed save does not fail
  the answer; the log row says it was not stored.
- Each row holds the Response object and this turn's input items; a `previous_response_id`
  is replayed by walking the chain back (`selectors.bridged_chain`), at most MAX_HOPS responses
  and GATEWAY_MAX_BODY_BYTES of stored JSON. Every response of the chain must be in a group the
  key may use; otherwise the answer is exactly that of an unknown id.
- Bounds (settings.GATEWAY, defaults below): a row over BRIDGE_STORE_MAX_ROW_BYTES is not stored;
  rows expire after BRIDGE_STORE_TTL_SECONDS (expired rows are never served); expired rows are
  deleted, and the oldest ones until the rest fit BRIDGE_STORE_MAX_TOTAL_BYTES, by
  `manage.py prune_bridged_responses` and by each process every BRIDGE_STORE_PRUNE_SECONDS.
"""

import asyncio
import logging
import time

import orjson
from django.conf import settings

from routing import dbthread, errors, selectors, services
from routing.bridge import is_bridged_id, new_id
from routing.config.snapshots import KeySnap

log = logging.getLogger(__name__)
DEFAULTS = {
    "BRIDGE_STORE_TTL_SECONDS": 30 * 24 * 3600,
    "BRIDGE_STORE_MAX_ROW_BYTES": 4 * 1024 * 1024,
    "BRIDGE_STORE_MAX_TOTAL_BYTES": 1024 * 1024 * 1024,
    "BRIDGE_STORE_PRUNE_SECONDS": 600,
}
MAX_HOPS = 1000
_last_prune = time.monotonic()
_tasks: set[asyncio.Task] = set()


def setting(name: str) -> int:
    return settings.GATEWAY.get(name, DEFAULTS[name])


def input_items(body: dict) -> list[dict]:
    """This turn's input as stored Responses items, each with an id (for `input_items`)."""
    value = body.get("input")
    raw = [{"role": "user", "content": [{"type": "input_text", "text": value}]}] if isinstance(value, str) \
        else [i for i in (value or ()) if isinstance(i, dict)]
    items = []
    for item in raw:
        item = dict(item)
        if "type" not in item and "role" in item:
            item["type"] = "message"
        item.setdefault("id", new_id("msg_gw_" if item.get("type") == "message" else "item_gw_"))
        items.append(item)
    return items


async def save(response: dict, body: dict, *, group: str, deployment_id: int | None) -> dict:
    """Store a bridged response; returns what the log row says about it."""
    rid = response["id"]
    data, items = orjson.dumps(response), orjson.dumps(input_items(body))
    size, limit = len(data) + len(items), setting("BRIDGE_STORE_MAX_ROW_BYTES")
    note = {"action": "store", "path": "store", "response_id": rid, "stored": False}
    if size > limit:
        return note | {"reason": f"{size} bytes, over BRIDGE_STORE_MAX_ROW_BYTES ({limit})"}
    prev = body.get("previous_response_id")
    try:
        await dbthread.run(services.bridged_response_save, response_id=rid, group_name=group,
                           deployment_id=deployment_id, previous_response_id=prev if is_bridged_id(prev) else "",
                           response=data, input_items=items, ttl_seconds=setting("BRIDGE_STORE_TTL_SECONDS"))
    except Exception as exc:  # the answer still goes out; only follow-ups will not find it
        log.warning("bridged response %s not stored: %s", rid, exc)
        return note | {"reason": f"database: {type(exc).__name__}"}
    _maybe_prune()
    return note | {"stored": True, "bytes": size}


def _maybe_prune() -> None:
    global _last_prune
    if time.monotonic() - _last_prune < setting("BRIDGE_STORE_PRUNE_SECONDS"):
        return
    _last_prune = time.monotonic()
    task = asyncio.get_running_loop().create_task(prune())
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)


async def prune() -> tuple[int, int]:
    try:
        return await dbthread.run_background(services.bridged_responses_prune,
                                             max_total_bytes=setting("BRIDGE_STORE_MAX_TOTAL_BYTES"))
    except Exception as exc:
        log.warning("bridged response store not pruned: %s", exc)
        return 0, 0


async def load(response_id: str):
    """The stored row for a bridged id, or None (unknown or expired). Who may see it is the caller's check."""
    try:
        return await dbthread.run(selectors.bridged_response, response_id)
    except Exception as exc:
        raise store_unavailable(exc) from None


async def history(previous_id: str, key: KeySnap) -> list[dict]:
    """The conversation `previous_response_id` stands for, as Responses items, oldest first.
    Raises previous_response_not_found exactly as for an id nobody knows."""
    try:
        chain = await dbthread.run(selectors.bridged_chain, previous_id, max_hops=MAX_HOPS,
                                   max_bytes=settings.GATEWAY["MAX_BODY_BYTES"])
    except Exception as exc:
        raise store_unavailable(exc) from None
    if chain is None or not all(key.may_use(row.group_name) for row in chain):
        raise errors.previous_response_not_found(previous_id)
    items: list[dict] = []
    for row in chain:
        items += orjson.loads(row.input_items)
        items += orjson.loads(row.response).get("output") or []
    return items


def store_unavailable(exc: Exception) -> errors.GatewayError:
    log.warning("bridged response store unreachable: %s", exc)
    return errors.GatewayError(503, "The gateway's response store is unreachable right now; try again shortly.",
                               type="api_error", code="store_unavailable", headers={"retry-after": "2"})
