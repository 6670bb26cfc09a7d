"""Response id → deployment id, so follow-up calls reach the deployment holding the state.

Remembered in memory at once (bounded LRU) and persisted by the log writer
(ResponseAffinity rows, with a TTL), so another process or a restarted one finds it.
"""

from collections import OrderedDict

from . import dbthread, selectors

_LIMIT = 100_000
_recent: "OrderedDict[str, int]" = OrderedDict()


def remember(response_id: str, deployment_id: int) -> None:
    _recent[response_id] = deployment_id
    if len(_recent) > _LIMIT:
        _recent.popitem(last=False)


async def lookup(response_id: str) -> int | None:
    found = _recent.get(response_id)
    if found is None:
        found = await dbthread.run(selectors.response_deployment, response_id)
        if found is not None:
            remember(response_id, found)
    return found
