"""Garbage collection for the gateway process: on a clock, not on allocation counts.

A request's objects form no reference cycles (the two the frameworks create per request
are undone where they are made: DRF's view <-> request in api/base.py, httpx's response
<-> stream in upstream/relay.py), so reference counting frees them as soon as the request
ends, and the cyclic collector has almost nothing to find. Left to itself it still ran
every ~10 ms at load (every 700 net allocations), and a full collection several times
a second: after `gc.freeze()` its "long-lived" heuristic starts again from zero. Each
full pass stopped every request for up to 30 ms — the p99 of the whole gateway.

So after start-up everything loaded so far (Django, the URL resolver, the route table,
the upstream client) is frozen out of the collector's reach, the automatic collector is
switched off, and a background task collects the young generations every YOUNG_SECONDS
(a millisecond or two: only what survived since the last pass) and everything every
FULL_SECONDS (rare cycles, from error paths, that reached the oldest generation).
"""

import asyncio
import gc
import logging

log = logging.getLogger(__name__)
YOUNG_SECONDS = 1.0
FULL_SECONDS = 600.0
_task: asyncio.Task | None = None


def freeze_startup() -> None:
    gc.collect()
    gc.freeze()


async def _run() -> None:
    loop = asyncio.get_running_loop()
    next_full = loop.time() + FULL_SECONDS
    while True:
        await asyncio.sleep(YOUNG_SECONDS)
        if loop.time() >= next_full:
            gc.collect()
            next_full = loop.time() + FULL_SECONDS
        else:
            gc.collect(1)


def start() -> None:
    global _task
    freeze_startup()
    gc.disable()
    _task = asyncio.get_running_loop().create_task(_run(), name="gc-collector")


def stop() -> None:
    global _task
    if _task is not None:
        _task.cancel()
        _task = None
    gc.enable()
