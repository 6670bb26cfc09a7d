"""The in-memory route table each gateway process serves from.

Requests read `table.snapshot` (a frozen RouteSnapshot): no database query per request.
A background task polls the shared route version every GATEWAY_ROUTE_REFRESH_SECONDS
and swaps in a freshly loaded snapshot when it moved, so an admin save or an
`import_routes` run in another process is live everywhere within that bound. In-flight
requests keep the snapshot object they started with.

A lookup miss (unknown model or key) triggers a version check, so a route or key created
a moment ago works on its first request. Misses share checks, and checks run at most every
MISS_CHECK_INTERVAL, so a flood of unknown keys or models costs at most a few cheap queries
a second, whatever its rate.

The database going away never fails a request by itself: the last good snapshot keeps
serving (unknown keys and models get their 401/404 from it). Only a process that never
loaded one answers 503 `routes_unavailable` until it can.
"""

import asyncio
import logging
import time

from django.conf import settings

from routing import dbthread, errors, selectors
from routing.config.snapshots import RouteSnapshot
from routing.resilience import shared_health

log = logging.getLogger(__name__)
MISS_CHECK_INTERVAL = 0.1


class RouteTable:
    def __init__(self) -> None:
        self.snapshot: RouteSnapshot | None = None
        self._stale = False
        self._lock: asyncio.Lock | None = None
        self._task: asyncio.Task | None = None
        self._miss_lock: asyncio.Lock | None = None
        self._last_miss_check = 0.0

    def mark_stale(self) -> None:
        self._stale = True

    async def get(self) -> RouteSnapshot:
        snap = self.snapshot
        if snap is not None and not self._stale:
            return snap
        try:
            return await self.reload()
        except Exception as exc:
            if self.snapshot is not None:  # serve the last good one; the refresher keeps trying
                log.warning("route table reload failed, serving the last snapshot: %s", exc)
                return self.snapshot
            log.error("route table not loaded: %s", exc)
            raise errors.routes_unavailable() from exc

    async def reload(self) -> RouteSnapshot:
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self.snapshot is None or self._stale:
                self._stale = False
                self.snapshot = await dbthread.run(selectors.load_snapshot)
            self._ensure_refresher()
            return self.snapshot

    async def refresh_if_changed(self) -> RouteSnapshot:
        """Called on a lookup miss: reload now if the shared version moved.

        Only a check that started after this request arrived can have seen a route
        committed just before it, so each miss waits for such a check; concurrent misses
        share one (at most one version query is in flight)."""
        arrived = time.monotonic()
        snap = await self.get()
        if self._miss_lock is None:
            self._miss_lock = asyncio.Lock()
        async with self._miss_lock:
            if self._last_miss_check >= arrived:
                return self.snapshot
            pause = self._last_miss_check + MISS_CHECK_INTERVAL - time.monotonic()
            if pause > 0:
                await asyncio.sleep(pause)
            self._last_miss_check = time.monotonic()
            try:
                if await dbthread.run(selectors.route_version) != snap.version:
                    self._stale = True
                    return await self.get()
            except Exception as exc:
                log.warning("route version check failed, answering from the last snapshot: %s", exc)
        return self.snapshot

    def _ensure_refresher(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._refresh_loop(), name="route-refresher")

    async def _refresh_loop(self) -> None:
        interval = settings.GATEWAY["ROUTE_REFRESH_SECONDS"]
        while True:
            await asyncio.sleep(interval)
            try:
                version = await dbthread.run(selectors.route_version)
                if self._stale or self.snapshot is None or version != self.snapshot.version:
                    self._stale = True
                    await self.reload()
                    log.info("route table reloaded (version %s)", self.snapshot.version)
                await shared_health.pull(self.snapshot.deployments)
            except Exception:  # keep serving the last good snapshot; try again next tick
                log.exception("route table refresh failed")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None


table = RouteTable()
