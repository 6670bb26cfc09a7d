"""The Prometheus multiprocess directory: each worker of a server writes its metrics to files
there, and /metrics, served by whichever worker gets the scrape, adds them up.

prometheus_client picks multiprocess mode from PROMETHEUS_MULTIPROC_DIR when it is imported.
gateway/asgi.py sets it to `default_dir()` before anything imports the library, unless the
environment already sets it.

By default each server gets its own directory, `var/prometheus/server-<pid>`. The pid is the
uvicorn supervisor's under `--workers N`, since the workers are its multiprocessing children,
and the process's own when it serves alone. So:
- two servers started from one checkout (`make run` and a benchmark, the test servers) never
  mix their numbers;
- a new server starts from zero, because its directory is new. `prepare()` removes the
  directories of servers that have ended;
- a worker that uvicorn restarts goes on in the same directory. The dead worker's counters and
  histograms stay, so totals never go down. Its live gauges (in-flight, queue depth, health) are
  dropped with prometheus_client's `mark_process_dead`.

When PROMETHEUS_MULTIPROC_DIR is given, that directory is used as it is. Whoever sets it
empties it before the server starts, as prometheus_client asks (under gunicorn, for example).
Each worker still drops the live gauges of dead processes when it starts.
"""

import multiprocessing
import os
import shutil
from pathlib import Path

ENV = "PROMETHEUS_MULTIPROC_DIR"
ROOT = Path(__file__).resolve().parents[2] / "var" / "prometheus"


def default_dir() -> str:
    parent = multiprocessing.parent_process()
    owner = parent.pid if parent is not None else os.getpid()
    return str(ROOT / f"server-{owner}")


def enabled() -> bool:
    """Is prometheus_client in multiprocess mode? (It decided when it was imported.)"""
    from prometheus_client import values

    return bool(os.environ.get(ENV)) and getattr(values.ValueClass, "_multiprocess", False)


def prepare(path: str | None = None) -> None:
    """Run once per process before it records anything (lifespan startup). `path`: the directory
    (default: PROMETHEUS_MULTIPROC_DIR when prometheus_client is in multiprocess mode)."""
    if path is None:
        if not enabled():
            return
        path = os.environ[ENV]
    os.makedirs(path, exist_ok=True)
    if Path(path).parent == ROOT:
        _remove_ended_servers(keep=Path(path))
    from prometheus_client.multiprocess import mark_process_dead

    for pid in _pids(path):
        # Our own pid's files are left over from an earlier process that had it: it is gone too.
        if pid == os.getpid() or not _alive(pid):
            mark_process_dead(pid, path)


def collect(path: str | None = None) -> bytes:
    """Every live and past worker's metrics, summed, in the Prometheus text format."""
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.multiprocess import MultiProcessCollector

    path = path or os.environ[ENV]
    if not os.path.isdir(path):  # nothing recorded yet (prepare() makes it at startup)
        return b""
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=path)
    return generate_latest(registry)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def _pids(path: str) -> set[int]:
    """The pids in the file names prometheus_client writes: counter_123.db, gauge_livesum_123.db, ..."""
    pids = set()
    for name in os.listdir(path):
        tail = name[:-3].rpartition("_")[2] if name.endswith(".db") else ""
        if tail.isdigit():
            pids.add(int(tail))
    return pids


def _remove_ended_servers(keep: Path) -> None:
    for directory in ROOT.glob("server-*"):
        owner = directory.name.removeprefix("server-")
        if directory != keep and owner.isdigit() and not _alive(int(owner)):
            shutil.rmtree(directory, ignore_errors=True)
