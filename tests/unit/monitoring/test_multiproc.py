"""routing/monitoring/multiproc.py: two processes writing to one multiprocess directory are summed,
a dead one's live gauges go while its counters stay, and servers that ended leave no directory."""

import multiprocessing
import os
import subprocess
import sys
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from routing.monitoring import multiproc

ROOT = Path(__file__).resolve().parents[3]
CHILD = """
import sys
import django

django.setup()
from routing.monitoring.metrics import Metrics, Recorder
from tests.unit.monitoring.test_metrics import ROUTES, row

requests, in_flight, state = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
recorder = Recorder(Metrics(), lambda: ROUTES)
recorder.record([row(request_id=f"req_{i}") for i in range(requests)])
recorder.sample(in_flight=in_flight, upstream_in_flight={}, health=lambda dep_id: state, queue_depth=0, stalled=False)
print("recorded", flush=True)
sys.stdin.read()  # stay alive (its live gauges count) until the test closes stdin
"""


class Worker:
    def __init__(self, directory: Path, requests: int, in_flight: int, state: str) -> None:
        env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory), "DJANGO_SETTINGS_MODULE": "gateway.settings"}
        self.proc = subprocess.Popen([sys.executable, "-c", CHILD, str(requests), str(in_flight), state], cwd=ROOT,
                                     env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        line = self.proc.stdout.readline()
        assert line == b"recorded\n", line + self.proc.stderr.read()

    def end(self) -> None:
        self.proc.stdin.close()
        assert self.proc.wait(20) == 0, self.proc.stderr.read()


def scrape(directory: Path) -> dict:
    text = multiproc.collect(str(directory)).decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_two_processes_are_summed_and_a_dead_ones_live_gauges_go(tmp_path):
    east = (("deployment", "east"), ("endpoint", "responses"), ("group", "gpt"))
    completed = ("gateway_requests_total", (*east, ("outcome", "completed"), ("status_class", "2xx")))
    state = ("gateway_deployment_state", (("deployment", "east"), ("group", "gpt"), ("state", "cooling")))
    a = Worker(tmp_path, requests=3, in_flight=2, state="cooling")
    b = Worker(tmp_path, requests=4, in_flight=5, state="healthy")
    try:
        got = scrape(tmp_path)
        assert got[completed] == 7
        assert got["gateway_request_duration_seconds_count", (*east, ("stream", "false"))] == 7
        assert got["gateway_requests_in_flight", ()] == 7  # livesum
        assert got[state] == 1  # livemax: the worst any live worker sees
        b.end()
        multiproc.prepare(str(tmp_path))  # what the next worker to start does
        got = scrape(tmp_path)
        assert got[completed] == 7, "a dead worker's counts must stay (totals never go down)"
        assert got["gateway_requests_in_flight", ()] == 2
    finally:
        for worker in (a, b):
            if worker.proc.poll() is None:
                worker.end()
    multiproc.prepare(str(tmp_path))
    got = scrape(tmp_path)
    assert got[completed] == 7 and ("gateway_requests_in_flight", ()) not in got and state not in got


def test_a_server_gets_its_own_directory_and_ended_servers_lose_theirs(tmp_path, monkeypatch):
    monkeypatch.setattr(multiproc, "ROOT", tmp_path)
    assert multiproc.default_dir() == str(tmp_path / f"server-{os.getpid()}")
    with multiprocessing.get_context("spawn").Pool(1) as pool:  # a uvicorn --workers child is a spawned one
        assert pool.apply(_child_default_dir) == f"server-{os.getpid()}"
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (tmp_path / f"server-{ended.stdout.strip()}").mkdir()
    (tmp_path / f"server-{os.getppid()}").mkdir()  # a live process's server
    mine = tmp_path / f"server-{os.getpid()}"
    multiproc.prepare(str(mine))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([mine.name, f"server-{os.getppid()}"])


def _child_default_dir() -> str:
    return Path(multiproc.default_dir()).name
