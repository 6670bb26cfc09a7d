"""Where the async side runs its (few) database calls: small dedicated thread pools.

Background jobs (route reloads, the log writer) and rare request-path fallbacks run
Django ORM code here instead of through asgiref's single thread-sensitive executor,
so they never queue behind each other or behind admin requests.

`run_background()` is for work that can wait (the log writer's flushes): it
runs on a thread that gets the CPU only when the event loop does not want it (Linux
SCHED_IDLE). On a busy core the kernel favours a thread that mostly sleeps, so a batch
insert at normal priority ran to completion while requests waited: it was the c=1
latency tail (p99 4.4 ms; 2.4 ms with the insert on the idle thread). Work that has
waited longer than its patience (a saturated core leaves an idle thread no time at all)
is promoted to the normal policy until it is done, at nice 10 (PROMOTED_NICE): it then
gets about a tenth of a core the event loop also wants, so a 500-row insert (~12 ms of
CPU) is spread thinly over the requests in flight instead of taking half the core for
25 ms. At nice 0 that burst was the 16-client p99 (19 ms; 15 ms at nice 10, README
"Performance"). Where the kernel does not allow moving a thread back from SCHED_IDLE
(no CAP_SYS_NICE, low RLIMIT_NICE), background work simply runs at normal priority.
"""

import asyncio
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from functools import partial

from django.db import close_old_connections

# The idle thread's nice value once promoted: a CPU weight of 110 against the event loop's 1024, about
# a tenth of a busy core, over twice what the log writer needs at the gateway's full rate (~20 µs per row).
PROMOTED_NICE = 10
_pool = ThreadPoolExecutor(max_workers=3, thread_name_prefix="gateway-db")


class _IdleThread:
    def __init__(self) -> None:
        self.tid: int | None = None
        self.usable = False  # set by the thread itself: it can go idle and be promoted back
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gateway-db-idle",
                                           initializer=self._probe)

    def _probe(self) -> None:
        self.tid = threading.get_native_id()
        try:
            os.sched_setscheduler(self.tid, os.SCHED_IDLE, os.sched_param(0))
        except (AttributeError, OSError):
            return  # not Linux or not allowed: stays a normal thread, unused
        try:
            os.sched_setscheduler(self.tid, os.SCHED_OTHER, os.sched_param(0))
            os.sched_setscheduler(self.tid, os.SCHED_IDLE, os.sched_param(0))
        except OSError:
            return  # stuck at idle priority: never used, since starved work could not be promoted
        try:
            os.setpriority(os.PRIO_PROCESS, self.tid, PROMOTED_NICE)  # applies once promoted to SCHED_OTHER
        except OSError:
            pass
        self.usable = True

    def priority(self, idle: bool) -> None:
        try:
            os.sched_setscheduler(self.tid, os.SCHED_IDLE if idle else os.SCHED_OTHER, os.sched_param(0))
        except OSError:
            pass


_idle = _IdleThread()


def start() -> None:
    """Start the idle-priority thread (the server's lifespan startup calls this); its probe
    decides whether it can be used. Until then background work runs at normal priority."""
    _idle.executor.submit(lambda: None).result()


def _run(fn, args, kwargs):
    close_old_connections()
    return fn(*args, **kwargs)


async def run(fn, *args, **kwargs):
    return await asyncio.get_running_loop().run_in_executor(_pool, partial(_run, fn, args, kwargs))


async def run_background(fn, *args, patience: float = 0.5):
    """Run `fn` when the CPU is otherwise idle; after `patience` seconds (at once if 0), at a low weight."""
    if not _idle.usable:
        return await run(fn, *args)
    future = asyncio.get_running_loop().run_in_executor(_idle.executor, partial(_run, fn, args, {}))
    if patience > 0:
        done, _ = await asyncio.wait({future}, timeout=patience)
        if done:
            return future.result()
    _idle.priority(idle=False)
    try:
        return await future
    finally:
        _idle.priority(idle=True)
