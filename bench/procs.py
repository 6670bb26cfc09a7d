"""Process plumbing for the benchmark: pinned children, readiness, /proc sampling, teardown."""

import http.client
import os
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def raise_fd_limit(want: int = 65536) -> int:
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = min(hard, max(soft, want)) if hard != resource.RLIM_INFINITY else max(soft, want)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ValueError, OSError):
        return soft
    return target


def _die_with_parent() -> None:
    """preexec: the child gets SIGTERM if the orchestrator dies (even by SIGKILL); survives taskset's exec."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:
        pass


class Procs:
    """Children started pinned to a core; all of them are stopped by `stop_all()`."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.children: list[tuple[str, subprocess.Popen]] = []

    def start(self, name: str, cmd: list[str], *, cpu: str | None, env: dict | None = None,
              cwd: str | None = None) -> subprocess.Popen:
        if cpu is not None:
            cmd = ["taskset", "-c", cpu] + cmd  # taskset execs: the pid is the program's own
        log = open(self.log_dir / f"{name}.log", "ab")
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=cwd, start_new_session=True,
                                preexec_fn=_die_with_parent)  # Ctrl-C reaches us only; we stop them in order
        log.close()
        self.children.append((name, proc))
        return proc

    def stop(self, proc: subprocess.Popen, timeout: float = 20.0) -> None:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)  # uvicorn: lifespan shutdown flushes the log writer
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        self.children = [(n, p) for n, p in self.children if p is not proc]

    def stop_all(self) -> None:
        for _, proc in reversed(list(self.children)):
            try:
                self.stop(proc)
            except Exception:
                pass


def wait_http(port: int, path: str, proc: subprocess.Popen, timeout: float = 60.0, name: str = "server") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode} before it was ready (see its log)")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", path)
            if conn.getresponse().status < 500:
                conn.close()
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{name} not ready on port {port} after {timeout:g}s")


def status_kb(pid: int, field: str) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def cpu_times(pid: int) -> tuple[float, float] | None:
    """(user, system) CPU seconds of a process, all threads."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return int(fields[11]) / CLK_TCK, int(fields[12]) / CLK_TCK
    except (OSError, IndexError, ValueError):
        return None


def cpu_seconds(pid: int) -> float | None:
    times = cpu_times(pid)
    return sum(times) if times else None


def core_jiffies() -> dict[str, tuple[int, int]]:
    """Per core (busy, total) jiffies from /proc/stat."""
    out = {}
    with open("/proc/stat") as fh:
        for line in fh:
            if line.startswith("cpu") and line[3:4].isdigit():
                name, *vals = line.split()
                nums = [int(v) for v in vals[:8]]
                out[name] = (sum(nums) - nums[3] - nums[4], sum(nums))
    return out


def reset_peak_rss(pid: int) -> bool:
    """Writing 5 to clear_refs resets VmHWM (Linux >= 4.0, needs ptrace rights)."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


class Sampler:
    """Samples RSS and CPU of some pids while a workload runs (a background thread)."""

    def __init__(self, pids: dict[str, int], interval: float = 0.1) -> None:
        self.pids, self.interval = pids, interval
        self.max_rss_kb = {n: 0 for n in pids}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> "Sampler":
        self.t0 = time.monotonic()
        self.cpu0 = {n: cpu_times(p) for n, p in self.pids.items()}
        self.cores0 = core_jiffies()
        self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.is_set():
            for name, pid in self.pids.items():
                rss = status_kb(pid, "VmRSS")
                if rss:
                    self.max_rss_kb[name] = max(self.max_rss_kb[name], rss)
            self._stop.wait(self.interval)

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        wall = time.monotonic() - self.t0
        self.cpu_pct, self.sys_pct = {}, {}
        for name, pid in self.pids.items():
            c0, c1 = self.cpu0[name], cpu_times(pid)
            ok = c0 is not None and c1 is not None
            self.cpu_pct[name] = round((sum(c1) - sum(c0)) / wall * 100, 1) if ok else None
            self.sys_pct[name] = round((c1[1] - c0[1]) / wall * 100, 1) if ok else None
        cores1 = core_jiffies()
        self.core_busy_pct = {c: round((cores1[c][0] - b0) / max(1, cores1[c][1] - t0) * 100, 1)
                              for c, (b0, t0) in self.cores0.items() if c in cores1}

    def summary(self) -> dict:
        """cpu_pct: of our processes; core_busy_pct: of each core, by anyone (shows foreign load on core 1)."""
        return {"cpu_pct": self.cpu_pct, "cpu_sys_pct": self.sys_pct, "core_busy_pct": self.core_busy_pct,
                "max_rss_mb": {n: round(v / 1024, 1) for n, v in self.max_rss_kb.items()}}
