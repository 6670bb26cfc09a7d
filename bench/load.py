"""Load generators: `wrk` (non-streaming) and a lean asyncio client (streams, and the fallback).

    python -m bench.load --url http://127.0.0.1:8000/v1/responses --header "Authorization: Bearer sk-…" \
        --body '{"model":"bench","input":"hi","stream":true}' --concurrency 16 --duration 10

The asyncio client (uvloop + httptools, one keep-alive connection per worker) prints one
JSON object: per-request latency (send → last byte), TTFB (send → first body byte, i.e.
the first SSE event), event inter-arrival gaps within each stream (a gap of 0 means the
event arrived in the same read as the previous one: batching), errors, and the peak
number of streams open at once. Workers stop issuing requests after `--duration` and
wait for those in flight, so every request sent is also completed (or counted as error).
With `--count N` each worker sends exactly N requests instead.

`run_wrk()` drives wrk with a generated Lua script whose `done()` prints the latency
percentiles as JSON (wrk's own --latency output has no p95).
"""

import argparse
import asyncio
import json
import os
import random
import shutil
import subprocess
import sys
import time
from urllib.parse import urlsplit

import httptools

PCTS = (50, 90, 95, 99)


def pct(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile of an already sorted list."""
    if not values:
        return None
    return values[min(len(values) - 1, max(0, int(round(p / 100 * len(values) + 0.5)) - 1))]


def summary_ms(values: list[float]) -> dict:
    """Seconds in, milliseconds out: mean and the usual percentiles."""
    v = sorted(values)
    out = {"n": len(v), "mean": round(sum(v) / len(v) * 1000, 3) if v else None}
    out.update({f"p{p}": round(pct(v, p) * 1000, 3) if v else None for p in PCTS})
    out["max"] = round(v[-1] * 1000, 3) if v else None
    return out


# ---------------------------------------------------------------- wrk ----------

LUA = """wrk.method = "POST"
wrk.body = [==[%(body)s]==]
wrk.headers["Content-Type"] = "application/json"
%(headers)s
local threads = {}
setup = function(thread) table.insert(threads, thread) end
init = function(args) sent = 0 end
request = function() sent = sent + 1; return wrk.format() end  -- counts requests written
done = function(summary, latency, requests)
  local e = summary.errors
  local sent = 0
  for _, t in ipairs(threads) do sent = sent + t:get("sent") end
  local p = {}
  for _, q in ipairs({50, 75, 90, 95, 99, 99.9}) do
    p[#p + 1] = string.format('"p%%s": %%.3f', q, latency:percentile(q) / 1000)
  end
  io.write(string.format('BENCHJSON {"sent": %%d, "requests": %%d, "duration_s": %%.6f, "bytes": %%d, ' ..
    '"errors": {"connect": %%d, "read": %%d, "write": %%d, "status": %%d, "timeout": %%d}, ' ..
    '"latency_ms": {"min": %%.3f, "mean": %%.3f, "max": %%.3f, %%s}}\\n',
    sent, summary.requests, summary.duration / 1e6, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency.min / 1000, latency.mean / 1000, latency.max / 1000, table.concat(p, ", ")))
end
"""


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


def run_wrk(url: str, body: bytes, headers: dict[str, str], *, concurrency: int, duration: float,
            script_path: str, cpu: str | None = "0") -> dict:
    hdrs = "\n".join(f'wrk.headers["{k}"] = "{v}"' for k, v in headers.items())
    with open(script_path, "w") as fh:
        fh.write(LUA % {"body": body.decode(), "headers": hdrs})
    cmd = ["wrk", "-t1", f"-c{concurrency}", f"-d{max(1, round(duration))}s", "--timeout", "10s", "-s", script_path,
           url]
    if cpu is not None:
        cmd = ["taskset", "-c", cpu] + cmd
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("BENCHJSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {proc.stdout[-500:]} {proc.stderr[-500:]}")
    raw = json.loads(line[len("BENCHJSON "):])
    lat = raw["latency_ms"]
    errors = sum(raw["errors"].values())
    return {
        "tool": "wrk", "concurrency": concurrency, "duration_s": raw["duration_s"],
        "completed": raw["requests"], "sent": raw["sent"],  # the last `concurrency` in flight are cut at the end
        "errors": errors, "errors_by_kind": {k: v for k, v in raw["errors"].items() if v},
        "rps": round(raw["requests"] / raw["duration_s"], 1),
        "latency_ms": {"n": raw["requests"], "mean": lat["mean"], "p50": lat["p50"], "p90": lat["p90"],
                       "p95": lat["p95"], "p99": lat["p99"], "max": lat["max"]},
    }


# ---------------------------------------------------------- asyncio client ----

class _Conn(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection; one request at a time."""

    def __init__(self, stats: "_Stats") -> None:
        self.stats, self.transport, self.fut, self.lost = stats, None, None, False
        self.parser = httptools.HttpResponseParser(self)

    def connection_made(self, transport) -> None:
        self.transport = transport

    def connection_lost(self, exc) -> None:
        self.lost = True
        if self.fut is not None and not self.fut.done():
            self.fut.set_exception(ConnectionError(str(exc) if exc else "connection closed"))

    def data_received(self, data: bytes) -> None:
        self.now = time.perf_counter()  # events parsed from one read share its arrival time
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            if self.fut is not None and not self.fut.done():
                self.fut.set_exception(exc)
            self.transport.close()

    def send(self, request: bytes) -> asyncio.Future:
        self.fut = asyncio.get_running_loop().create_future()
        self.t0, self.first, self.events, self.tail, self.opened = time.perf_counter(), None, [], b"", False
        self.reported = None
        self.transport.write(request)
        return self.fut

    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() == b"x-gateway-overhead-ms":  # the gateway's own measure of its time
            self.reported = float(value) / 1000

    def on_headers_complete(self) -> None:
        self.opened = True
        self.headers_at = self.now
        st = self.stats
        st.open_now += 1
        if st.open_now > st.peak_open:
            st.peak_open, st.peak_at = st.open_now, time.perf_counter()

    def on_body(self, data: bytes) -> None:
        now = self.now
        if self.first is None:
            self.first = now
        n = (self.tail + data[:1]).count(b"\n\n") + data.count(b"\n\n")
        self.tail = data[-1:]
        self.events.extend([now] * n)

    def on_message_complete(self) -> None:
        self.stats.open_now -= 1
        self.opened = False
        if not self.fut.done():
            self.fut.set_result((self.parser.get_status_code(), self.now, self.parser.should_keep_alive()))


class _Stats:
    def __init__(self) -> None:
        self.lat, self.ttfb, self.gaps, self.events, self.reported, self.headers = [], [], [], [], [], []
        self.ok = self.sent = 0
        self.errors: dict[str, int] = {}
        self.open_now = self.peak_open = 0
        self.peak_at = 0.0

    def error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1


def build_request(url: str, body: bytes, headers: dict[str, str]) -> tuple[str, int, bytes]:
    u = urlsplit(url)
    path = u.path + (f"?{u.query}" if u.query else "")
    lines = [f"POST {path} HTTP/1.1", f"Host: {u.netloc}", "Content-Type: application/json",
             f"Content-Length: {len(body)}", "Accept: */*"] + [f"{k}: {v}" for k, v in headers.items()]
    return u.hostname, u.port or 80, ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def _worker(host, port, request, stats: _Stats, deadline: float, count: int | None, timeout: float,
                  think: float = 0.0, rng: random.Random | None = None) -> None:
    loop = asyncio.get_running_loop()
    conn, done = None, 0
    while (count is None and time.perf_counter() < deadline) or (count is not None and done < count):
        if done and think:
            await asyncio.sleep(rng.uniform(0.0, think))
        done += 1
        try:
            if conn is None or conn.lost:
                _, conn = await loop.create_connection(lambda: _Conn(stats), host, port)
            stats.sent += 1
            status, end, keep = await asyncio.wait_for(conn.send(request), timeout)
        except (OSError, ConnectionError, asyncio.TimeoutError, httptools.HttpParserError) as exc:
            stats.error(type(exc).__name__)
            if conn is not None:
                if conn.opened:
                    stats.open_now -= 1
                conn.transport.close()
            conn = None
            await asyncio.sleep(0.01)
            continue
        if status >= 300:
            stats.error(f"http_{status}")
        else:
            stats.ok += 1
            stats.lat.append(end - conn.t0)
            stats.headers.append(conn.headers_at - conn.t0)
            if conn.first is not None:
                stats.ttfb.append(conn.first - conn.t0)
            if conn.reported is not None:
                stats.reported.append(conn.reported)
            ev = conn.events
            stats.events.append(len(ev))
            stats.gaps.extend(b - a for a, b in zip(ev, ev[1:]))
        if not keep:
            conn.transport.close()
            conn = None
    if conn is not None:
        conn.transport.close()


async def run_client(url: str, body: bytes, headers: dict[str, str], *, concurrency: int, duration: float = 10.0,
                     count: int | None = None, timeout: float = 120.0, ramp_s: float = 0.0,
                     think_s: float = 0.0) -> dict:
    host, port, request = build_request(url, body, headers)
    rng = random.Random(1)  # the same pauses in every run, for direct and gateway alike
    stats = _Stats()
    t0 = time.perf_counter()
    deadline = t0 + duration
    tasks = []
    for i in range(concurrency):
        tasks.append(asyncio.ensure_future(_worker(host, port, request, stats, deadline, count, timeout, think_s, rng)))
        if ramp_s:
            await asyncio.sleep(ramp_s / concurrency)
    await asyncio.gather(*tasks)
    wall = time.perf_counter() - t0
    gaps = stats.gaps
    return {
        "tool": "asyncio", "concurrency": concurrency, "duration_s": round(wall, 3),
        "sent": stats.sent, "completed": stats.ok, "errors": sum(stats.errors.values()),
        "errors_by_kind": stats.errors, "rps": round(stats.ok / wall, 1), "peak_open": stats.peak_open,
        "peak_open_at_s": round(stats.peak_at - t0, 3) if stats.peak_open else None,
        "latency_ms": summary_ms(stats.lat), "ttfb_ms": summary_ms(stats.ttfb),
        "headers_ms": summary_ms(stats.headers),  # send → response headers complete
        "events_per_stream": round(sum(stats.events) / len(stats.events), 2) if stats.events else 0,
        "gap_ms": summary_ms(gaps),
        "gaps_same_read": round(sum(1 for g in gaps if g == 0) / len(gaps), 4) if gaps else None,
        "gateway_reported_overhead_ms": summary_ms(stats.reported) if stats.reported else None,
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="asyncio HTTP load client; prints JSON")
    ap.add_argument("--url", required=True)
    ap.add_argument("--body", required=True)
    ap.add_argument("--header", action="append", default=[], help="'Name: value' (repeatable)")
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--count", type=int, help="requests per worker (instead of --duration)")
    ap.add_argument("--timeout", type=float, default=120.0)
    ap.add_argument("--ramp", type=float, default=0.0, help="seconds over which workers start")
    ap.add_argument("--think", type=float, default=0.0,
                    help="each worker pauses a random 0..THINK seconds between requests (no lockstep)")
    args = ap.parse_args(argv)
    headers = dict(h.split(": ", 1) for h in args.header)
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))
    except (ImportError, ValueError, OSError):
        pass
    import uvloop

    result = uvloop.run(run_client(args.url, args.body.encode(), headers, concurrency=args.concurrency,
                                   duration=args.duration, count=args.count, timeout=args.timeout,
                                   ramp_s=args.ramp, think_s=args.think))
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    os._exit(0)  # skip interpreter teardown of thousands of closed transports


if __name__ == "__main__":
    main()
