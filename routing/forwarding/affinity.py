"""Response id → deployment id, so follow-up calls reach the deployment holding the state.

Remembered in memory at once (bounded LRU) and persisted by the log writer
(ResponseAffinity rows, with a TTL), so another process or a restarted one finds it.
Reasoning item ids (rs_…) are remembered the same way: encrypted reasoning sent back on
the next turn (Codex, `store: false`) can only be decrypted by the resource that made it.

Lookups never fail a request: with the database unreachable an id the process does not
hold in memory is simply unknown (logged), as it would be for an id never seen.
"""

import logging
from collections import OrderedDict
from typing import NamedTuple

from routing import dbthread, selectors
from routing.config.snapshots import DeploymentSnap

log = logging.getLogger(__name__)
_LIMIT = 100_000


class Owner(NamedTuple):
    """The deployment that produced a response or reasoning item, and its group at the time."""

    deployment_id: int
    group: str


_recent: "OrderedDict[str, Owner]" = OrderedDict()


def remember(response_id: str, dep: DeploymentSnap) -> None:
    _recent[response_id] = Owner(dep.id, dep.group_name)
    if len(_recent) > _LIMIT:
        _recent.popitem(last=False)


def remember_reasoning(output_items, dep: DeploymentSnap) -> list[str]:
    ids = []
    if isinstance(output_items, list):
        for item in output_items:
            if isinstance(item, dict) and item.get("type") == "reasoning" and isinstance(item.get("id"), str):
                remember(item["id"], dep)
                ids.append(item["id"])
    return ids


def reasoning_ids(body: dict) -> list[str]:
    """Ids of the encrypted reasoning items a request sends back (those need their resource)."""
    items = body.get("input")
    if not isinstance(items, list):
        return []
    return [i["id"] for i in items if isinstance(i, dict) and i.get("type") == "reasoning"
            and isinstance(i.get("id"), str) and i.get("encrypted_content")]


async def lookup(*ids: str) -> Owner | None:
    """The owner of the first id known (memory first, then one database query for the rest)."""
    for item_id in ids:
        found = _recent.get(item_id)
        if found is not None:
            return found
    if not ids:
        return None
    try:
        found_in_db = await dbthread.run(selectors.response_deployments, list(ids))
    except Exception as exc:  # the database is away: unknown, like an id never seen
        log.warning("response affinity lookup failed, routing without it: %s", exc)
        return None
    for item_id in ids:
        if item_id in found_in_db:
            owner = _recent[item_id] = Owner(*found_in_db[item_id])
            return owner
    return None
