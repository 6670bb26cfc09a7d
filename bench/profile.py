"""Sampling profile of the running gateway with py-spy, summarised by function and by component.

`record()` takes a raw (collapsed-stack) profile and a flame graph SVG; `summarize()`
aggregates the raw one: self time per function (leaf frame), inclusive time per function,
and self time per component (the innermost frame that belongs to a known package).
"""

import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

# (component, substrings of a frame's file path); first match wins, innermost frame first
COMPONENTS = [
    ("asgiref (sync_to_async / thread hops)", ("/asgiref/",)),
    ("DRF + adrf (views, request, negotiation)", ("/rest_framework/", "/adrf/")),
    ("httpx + httpx-aiohttp (upstream client API)", ("/httpx/", "/httpx_aiohttp/")),
    ("aiohttp (upstream connections, HTTP parsing)", ("/aiohttp/", "/yarl/", "/multidict/")),
    ("gateway code (routing/, gateway/)", ("/routing/", "/gateway/")),
    ("httptools (HTTP parsing, C)", ("/httptools/",)),
    ("uvicorn (HTTP server)", ("/uvicorn/",)),
    ("django db + sqlite (log writer, route poll)", ("/django/db/", "sqlite3")),
    ("django request handling (handler, URL resolver, request/response)", ("/django/",)),
    ("logging", ("/logging/",)),
    ("json/orjson", ("/json/", "orjson")),
    ("concurrent.futures / threading", ("/concurrent/", "threading.py", "queue.py")),
    ("asyncio + uvloop (incl. C: event loop, sockets, HTTP parsing)", ("/asyncio/", "uvloop")),
]


def pyspy_path() -> str | None:
    local = Path(sys.executable).parent / "py-spy"
    return str(local) if local.exists() else shutil.which("py-spy")


def ensure_pyspy() -> str | None:
    path = pyspy_path()
    if path is None:
        print("installing py-spy into the venv …", flush=True)
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "py-spy"],
                       check=False)
        path = pyspy_path()
    return path


def record(pid: int, seconds: int, out: Path, fmt: str, rate: int = 250, gil: bool = False) -> bool:
    """Non-blocking sampling (py-spy does not pause the gateway); with `gil`, only the thread
    holding the GIL is sampled: where the process's Python CPU time goes."""
    exe = pyspy_path()
    cmd = [exe, "record", "--pid", str(pid), "--duration", str(seconds), "--rate", str(rate),
           "--format", fmt, "--output", str(out), "--threads", "--nonblocking"] + (["--gil"] if gil else [])
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        print(f"py-spy failed: {proc.stderr.strip()[-400:]}", flush=True)
    return proc.returncode == 0 and out.exists()


def _parse(raw: Path):
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            yield stack.split(";"), int(count)


def _func(frame: str) -> str:
    """`handle (django/core/handlers/asgi.py:165)` → `handle (django/core/handlers/asgi.py)`."""
    name, _, loc = frame.partition(" (")
    if not loc:
        return frame
    file = loc.rstrip(")").rsplit(":", 1)[0]
    for marker in ("site-packages/", "/lib/python3", "/work/main/"):
        if marker in file:
            file = file.split(marker, 1)[1]
    return f"{name} ({file})"


def _component(frames: list[str]) -> str:
    for frame in reversed(frames):
        loc = "/" + _func(frame).partition(" (")[2]  # py-spy shortens paths: `django/db/…`
        for name, needles in COMPONENTS:
            if any(n in loc for n in needles):
                return name
    return "other"


def summarize(raw: Path, top: int = 25) -> dict:
    self_t, incl, comp, threads = Counter(), Counter(), Counter(), Counter()
    executors: set[int] = set()
    total = 0
    for frames, count in _parse(raw):
        total += count
        thread = "?"
        if frames and frames[0].startswith("thread ("):  # `thread (tid): Name`
            thread, frames = frames[0].split("): ", 1)[-1], frames[1:]
            found = re.match(r"ThreadPoolExecutor-(\d+)_", thread)
            if found:
                executors.add(int(found.group(1)))
        threads[re.sub(r"\d+", "N", thread)] += count
        if not frames:
            continue
        self_t[_func(frames[-1])] += count
        for f in {_func(f) for f in frames}:
            incl[f] += count
        comp[_component(frames)] += count

    def pcts(counter, n):
        return [(k, round(v / total * 100, 1)) for k, v in counter.most_common(n)] if total else []

    return {"samples": total, "self": pcts(self_t, top), "inclusive": pcts(incl, top),
            "components": pcts(comp, 20), "threads": pcts(threads, 10),
            # executors are numbered in creation order: the span seen is how many were created meanwhile
            "thread_pool_executors_seen": len(executors),
            "thread_pool_executor_span": (max(executors) - min(executors) + 1) if executors else 0}


def render(summary: dict) -> str:
    lines = [f"py-spy samples: {summary['samples']} (GIL holder only: where Python CPU time goes)",
             f"ThreadPoolExecutor objects seen in samples: {summary['thread_pool_executors_seen']} "
             f"(numbered {summary['thread_pool_executor_span']} apart: created during the profile)", "",
             "Self time by component (innermost known package):"]
    lines += [f"  {p:5.1f}%  {k}" for k, p in summary["components"]]
    lines += ["", "Samples by thread:"] + [f"  {p:5.1f}%  {k}" for k, p in summary["threads"]]
    lines += ["", "Top functions by self time:"] + [f"  {p:5.1f}%  {k}" for k, p in summary["self"]]
    lines += ["", "Top functions by inclusive time:"] + [f"  {p:5.1f}%  {k}" for k, p in summary["inclusive"]]
    return "\n".join(lines)
