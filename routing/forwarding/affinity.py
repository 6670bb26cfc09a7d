"""Response id → deployment id, so follow-up calls reach the deployment holding the state.

Remembered in memory at once (bounded LRU) and persisted by the log writer
(ResponseAffinity rows, with a TTL), so another process or a restarted one finds it.
"""

from collections import OrderedDict

from routing import dbthread, selectors

_LIMIT = 100_000
_recent: "OrderedDict[str, int]" = OrderedDict()


def remember(response_id: str, deployment_id: int) -> None:
    _recent[response_id] = deployment_id
    if len(_recent) > _LIMIT:
        _recent.popitem(last=False)


def remember_reasoning(output_items, deployment_id: int) -> list[str]:
    """Reasoning item ids (rs_…) → deployment: encrypted reasoning sent back next turn
    (Codex, store:false) can only be decrypted by the resource that produced it."""
    ids = []
    if isinstance(output_items, list):
        for item in output_items:
            if isinstance(item, dict) and item.get("type") == "reasoning" and isinstance(item.get("id"), str):
                remember(item["id"], deployment_id)
                ids.append(item["id"])
    return ids


def reasoning_ids(body: dict) -> list[str]:
    items = body.get("input")
    if not isinstance(items, list):
        return []
    return [i["id"] for i in items if isinstance(i, dict) and i.get("type") == "reasoning"
            and isinstance(i.get("id"), str) and i.get("encrypted_content")]


def has_encrypted_reasoning(body: dict) -> bool:
    items = body.get("input")
    return isinstance(items, list) and any(
        isinstance(i, dict) and i.get("type") == "reasoning" and i.get("encrypted_content") for i in items)


def without_encrypted_reasoning(body: dict) -> dict:
    return dict(body, input=[i for i in body["input"]
                             if not (isinstance(i, dict) and i.get("type") == "reasoning" and i.get("encrypted_content"))])


async def lookup(response_id: str) -> int | None:
    found = _recent.get(response_id)
    if found is None:
        found = await dbthread.run(selectors.response_deployment, response_id)
        if found is not None:
            remember(response_id, found)
    return found
