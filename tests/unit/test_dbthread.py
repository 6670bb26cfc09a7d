"""routing/dbthread.py: background work runs when the CPU is otherwise idle, and once promoted
(its patience spent, or at once) on the normal policy at a low weight; then it goes back to idle."""

import asyncio
import os
import threading

import pytest

from routing import dbthread

pytestmark = pytest.mark.skipif(not hasattr(os, "SCHED_IDLE"), reason="Linux scheduling policies")


def scheduling() -> tuple[int, int]:
    tid = threading.get_native_id()
    return os.sched_getscheduler(tid), os.getpriority(os.PRIO_PROCESS, tid)


@pytest.fixture
def idle_thread():
    dbthread.start()
    if not dbthread._idle.usable:
        pytest.skip("this kernel does not let a thread leave SCHED_IDLE (no CAP_SYS_NICE)")


async def test_background_work_waits_idle_and_runs_promoted_at_a_low_weight(idle_thread):
    assert await dbthread.run_background(scheduling, patience=30) == (os.SCHED_IDLE, dbthread.PROMOTED_NICE)
    assert await dbthread.run_background(scheduling, patience=0) == (os.SCHED_OTHER, dbthread.PROMOTED_NICE)
    assert await dbthread.run_background(scheduling, patience=30) == (os.SCHED_IDLE, dbthread.PROMOTED_NICE)


async def test_work_that_outlasts_its_patience_is_promoted(idle_thread):
    started, release = threading.Event(), threading.Event()

    def slow():
        started.set()
        release.wait(10)
        return scheduling()

    job = asyncio.ensure_future(dbthread.run_background(slow, patience=0.05))
    await asyncio.get_running_loop().run_in_executor(None, started.wait, 10)
    await asyncio.sleep(0.2)
    release.set()
    assert await job == (os.SCHED_OTHER, dbthread.PROMOTED_NICE)
    assert await dbthread.run_background(scheduling, patience=30) == (os.SCHED_IDLE, dbthread.PROMOTED_NICE)
