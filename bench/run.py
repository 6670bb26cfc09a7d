"""`make bench` / `python -m bench.run [--quick] [--json PATH] [--profile]`: the whole benchmark in one go.

Core 0: fake upstream (bench.upstream), load generators (wrk for non-streaming, the
asyncio client in bench.load for streams) and this orchestrator. Core 1: the gateway,
one uvicorn process (and bench.tcprelay, the do-nothing floor). Each workload runs against
the upstream directly, through the relay, then through the gateway, back to back; then the
1,000-open-streams hold, the optional LiteLLM run and the optional py-spy profile. Prints a
table, writes JSON (bench/results/latest.json).
"""

import argparse
import importlib.util
import json
import os
import platform
import secrets
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from . import db, load, procs, report

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
PY = sys.executable
PROMPT = "Write a short greeting for the benchmark."
DISTURBED = 10.0  # % of core 1 busy with work other than ours (other processes, unattributed kernel work)


def ensure_wrk() -> bool:
    if load.wrk_available():
        return True
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print("wrk not found; trying `apt-get install -y wrk` …", flush=True)
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        ok = subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], env=env, capture_output=True).returncode == 0
        if not ok:  # the package lists may be missing on a fresh machine
            subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True)
            subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], env=env, capture_output=True)
    if not load.wrk_available():
        print("wrk unavailable: non-streaming load falls back to the asyncio client", flush=True)
    return load.wrk_available()


class Bench:
    def __init__(self, args, runner: procs.Procs) -> None:
        self.args, self.procs = args, runner
        self.dur = args.duration or (3.0 if args.quick else 10.0)
        self.use_wrk = ensure_wrk()
        self.results: dict = {}
        self.rows_seen = 0

    # ------------------------------------------------------------------ setup --
    def start(self) -> None:
        self.up_port, self.gw_port = procs.free_port(), procs.free_port()
        db_url = os.environ.get("BENCH_DATABASE_URL")
        if not db_url:
            path = RESULTS / "bench.sqlite3"
            for suffix in ("", "-wal", "-shm"):
                Path(str(path) + suffix).unlink(missing_ok=True)
            db_url = f"sqlite:///{path}"
        self.env = dict(os.environ, DATABASE_URL=db_url, DJANGO_SETTINGS_MODULE="gateway.settings",
                        SECRET_KEY=secrets.token_urlsafe(40), GATEWAY_ENCRYPTION_KEY=secrets.token_urlsafe(32),
                        GATEWAY_MASTER_KEY="sk-gw-master-" + secrets.token_urlsafe(24), LOG_LEVEL="WARNING",
                        GATEWAY_LOG_SPOOL_FILE=str(RESULTS / "requestlog-spool.jsonl"), PYTHONUNBUFFERED="1",
                        GATEWAY_LOG_JOURNAL_DIR=str(RESULTS / "requestlog-journal"))
        shutil.rmtree(RESULTS / "requestlog-journal", ignore_errors=True)  # a fresh database: no old rows
        os.environ.update({k: self.env[k] for k in ("DATABASE_URL", "DJANGO_SETTINGS_MODULE", "SECRET_KEY",
                                                   "GATEWAY_ENCRYPTION_KEY", "GATEWAY_MASTER_KEY",
                                                   "GATEWAY_LOG_SPOOL_FILE")})
        self.upstream = self.procs.start("upstream", [PY, "-m", "bench.upstream", "--port", str(self.up_port)],
                                         cpu="0", cwd=str(ROOT))
        procs.wait_http(self.up_port, "/healthz", self.upstream, name="fake upstream")
        print(f"fake upstream  pid {self.upstream.pid}  core 0  http://127.0.0.1:{self.up_port}", flush=True)
        self.key = db.setup(f"http://127.0.0.1:{self.up_port}")
        app = "bench.whatif:application" if self.args.whatif else "gateway.asgi:application"
        if self.args.whatif:
            self.env["WHATIF"] = self.args.whatif
            print(f"WHAT-IF RUN: the gateway runs with {self.args.whatif} (bench/whatif.py); not the product as is",
                  flush=True)
        if self.args.server == "granian":
            if importlib.util.find_spec("granian") is None:
                raise SystemExit("--server granian needs granian in the venv: .venv/bin/pip install granian")
            cmd = [PY, "-m", "granian", "--interface", "asgi", "--host", "127.0.0.1", "--port", str(self.gw_port),
                   "--loop", "uvloop", "--no-ws", "--log-level", "warning", "--backlog", "4096",
                   "--backpressure", "4096", "--workers", str(self.args.workers), app]
        else:
            cmd = [PY, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(self.gw_port), "--loop", "uvloop",
                   "--http", "gateway.listener:BoundedHttpToolsProtocol", "--no-access-log", "--lifespan", "on",
                   "--backlog", "4096"]
        cpu = "1"
        if self.args.workers > 1:  # scale-out check: N worker processes spread over both cores
            if self.args.server != "granian":
                cmd += ["--workers", str(self.args.workers)]
            cpu = "0,1"
        self.gateway = self.procs.start("gateway", cmd, cpu=cpu, env=self.env, cwd=str(ROOT))
        procs.wait_http(self.gw_port, "/healthz", self.gateway, name="gateway")
        print(f"gateway        pid {self.gateway.pid}  core 1  http://127.0.0.1:{self.gw_port}  (db {db_url})",
              flush=True)
        self.pids = {"gateway": self.gateway.pid, "upstream": self.upstream.pid}
        if not self.args.no_relay:
            self.relay_port = procs.free_port()
            self.relay = self.procs.start("tcprelay", [PY, "-m", "bench.tcprelay", "--port", str(self.relay_port),
                                                       "--to", f"127.0.0.1:{self.up_port}"], cpu="1", cwd=str(ROOT))
            procs.wait_http(self.relay_port, "/healthz", self.relay, name="tcp relay")
            self.pids["relay"] = self.relay.pid
            print(f"tcp relay      pid {self.relay.pid}  core 1  http://127.0.0.1:{self.relay_port}  (the floor: "
                  "same hops as the gateway, no work)", flush=True)

    def target(self, where: str, *, stream: bool, deltas: int = 20, delay_ms: float = 0) -> tuple:
        body = {"model": db.GROUP if where == "gateway" else db.UPSTREAM_MODEL, "input": PROMPT}
        if stream:
            body["stream"] = True
        body["metadata"] = {"bench_deltas": str(deltas), "bench_delay_ms": str(delay_ms)}
        if where in ("direct", "relay"):
            port = self.up_port if where == "direct" else self.relay_port
            return (f"http://127.0.0.1:{port}/openai/v1/responses", {"api-key": db.UPSTREAM_KEY},
                    json.dumps(body, separators=(",", ":")).encode())
        return (f"http://127.0.0.1:{self.gw_port}/v1/responses", {"Authorization": f"Bearer {self.key}"},
                json.dumps(body, separators=(",", ":")).encode())

    # ------------------------------------------------------------------ loads --
    def client(self, url, headers, body, *, concurrency, duration=None, count=None, timeout=120.0,
               ramp=0.0, think=0.0) -> dict:
        cmd = ["taskset", "-c", "0", PY, "-m", "bench.load", "--url", url, "--body", body.decode(),
               "--concurrency", str(concurrency), "--timeout", str(timeout), "--ramp", str(ramp),
               "--think", str(think)]
        cmd += ["--count", str(count)] if count else ["--duration", str(duration)]
        for k, v in headers.items():
            cmd += ["--header", f"{k}: {v}"]
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=str(ROOT), timeout=(duration or 0) + 300)
        if proc.returncode != 0 or not proc.stdout.strip():
            raise RuntimeError(f"load client failed: {proc.stderr[-800:]}")
        return json.loads(proc.stdout.strip().splitlines()[-1])

    def measure(self, where: str, *, stream: bool, concurrency: int, deltas: int = 20, delay_ms: float = 0,
                duration: float | None = None, count: int | None = None, ramp: float = 0.0,
                think: float = 0.0) -> dict:
        url, headers, body = self.target(where, stream=stream, deltas=deltas, delay_ms=delay_ms)
        duration = self.dur if duration is None and count is None else duration
        with procs.Sampler(self.pids) as sampler:
            if not stream and self.use_wrk and count is None:
                result = load.run_wrk(url, body, headers, concurrency=concurrency, duration=duration,
                                      script_path=str(RESULTS / "wrk-post.lua"))
            else:
                result = self.client(url, headers, body, concurrency=concurrency, duration=duration, count=count,
                                     ramp=ramp, think=think)
        result["procs"] = sampler.summary()
        ours = sum(v for k, v in result["procs"]["cpu_pct"].items() if k in ("gateway", "relay") and v)
        result["procs"]["foreign_core1_pct"] = round(result["procs"]["core_busy_pct"].get("cpu1", 0) - ours, 1)
        if where == "gateway":
            result["log"] = self.check_log(result)
        return result

    def check_log(self, result: dict) -> dict:
        t0 = time.monotonic()
        before = self.rows_seen
        self.rows_seen = db.wait_log_rows(before, expect=result["sent"])
        return {"rows": self.rows_seen - before, "sent": result["sent"], "completed": result["completed"],
                "wait_s": round(time.monotonic() - t0, 2)}

    def pair(self, name: str, **kw) -> None:
        """direct, relay, gateway back to back; once more if core 1 was busy with something else."""
        if self.args.only and not any(s in name for s in self.args.only.split(",")):
            return
        for attempt in range(self.args.retries + 1):
            wl = self.results[name] = {"params": kw}
            for where in ("direct", "gateway") if self.args.no_relay else ("direct", "relay", "gateway"):
                wl[where] = r = self.measure(where, **kw)
                foreign = r["procs"]["foreign_core1_pct"]
                lat = r.get("ttfb_ms") if kw.get("stream") else r["latency_ms"]
                what = "TTFB" if kw.get("stream") else "lat"
                print(f"  {name:<20} {where:<7} {r['rps']:>9,.1f}/s  {what} p50 {lat['p50']} ms  p99 {lat['p99']} ms  "
                      f"errors {r['errors']}  cpu {where if where != 'direct' else 'upstream'} "
                      f"{r['procs']['cpu_pct'].get(where if where != 'direct' else 'upstream')}%  "
                      f"core 1 other {foreign}%" + ("  DISTURBED" if foreign > DISTURBED else "")
                      + (f"  gap p50 {r['gap_ms']['p50']} ms" if kw.get("delay_ms") else ""), flush=True)
            worst = max(wl[w]["procs"]["foreign_core1_pct"] for w in ("relay", "gateway") if w in wl)
            wl["disturbed"] = worst > DISTURBED
            if not wl["disturbed"]:
                break
            if attempt < self.args.retries:
                print(f"  {name}: core 1 was {worst}% busy with other work; measuring again", flush=True)
        if "log" in wl["gateway"]:
            wl["log"] = wl["gateway"]["log"]

    def warm_up(self) -> None:
        for where in ("direct", "gateway"):
            for stream in (False, True):
                url, headers, body = self.target(where, stream=stream)
                self.client(url, headers, body, concurrency=4, duration=1.5)
        self.rows_seen = db.wait_log_rows(0)

    def breakdown(self) -> None:
        """c=1 through the gateway with the asyncio client, which also reads the gateway's own
        `x-gateway-overhead-ms` (arrival → response start, minus upstream wait): what is left of
        the client-seen overhead is spent outside the view (uvicorn, Django's handler, thread hops)."""
        if self.args.only and "breakdown" not in self.args.only:
            return
        dur = min(self.dur, 5.0)
        direct = self.client(*self.target("direct", stream=False), concurrency=1, duration=dur)
        gw = self.client(*self.target("gateway", stream=False), concurrency=1, duration=dur)
        self.rows_seen = db.wait_log_rows(self.rows_seen, expect=gw["sent"])
        seen = round(gw["latency_ms"]["p50"] - direct["latency_ms"]["p50"], 3)
        view = (gw.get("gateway_reported_overhead_ms") or {}).get("p50")
        self.results["breakdown_c1"] = {"direct": direct, "gateway": gw, "client_overhead_p50_ms": seen,
                                        "view_overhead_p50_ms": view,
                                        "outside_view_p50_ms": round(seen - view, 3) if view is not None else None}
        print(f"  breakdown_c1         overhead p50 seen by the client {seen} ms; the gateway's own "
              f"x-gateway-overhead-ms p50 {view} ms; outside the view ≈ "
              f"{self.results['breakdown_c1']['outside_view_p50_ms']} ms", flush=True)

    def open_streams(self, n: int) -> None:
        if self.args.only and "open" not in self.args.only:
            return
        deltas, delay = (10, 500) if self.args.quick else (20, 500)  # streams of ~8.5 s / ~13.5 s
        hwm_before = procs.status_kb(self.gateway.pid, "VmHWM")
        reset = procs.reset_peak_rss(self.gateway.pid)
        r = self.measure("gateway", stream=True, concurrency=n, deltas=deltas, delay_ms=delay, count=1, ramp=1.0)
        hwm = procs.status_kb(self.gateway.pid, "VmHWM")
        peak = r["procs"]["max_rss_mb"]["gateway"]
        if reset and hwm:
            peak = max(peak, round(hwm / 1024, 1))
        self.results["open_streams"] = {
            "streams": n, "params": {"deltas": deltas, "delay_ms": delay}, "gateway": r, "log": r.get("log"),
            "gateway_peak_rss_mb": peak, "gateway_vmhwm_whole_run_mb": round((hwm_before or 0) / 1024, 1),
            "peak_reset": reset}
        print(f"  open_{n:<15} gateway peak open {r['peak_open']} (at {r['peak_open_at_s']} s)  errors {r['errors']}  "
              f"peak RSS {peak} MB (whole run {round((hwm_before or 0) / 1024, 1)} MB)", flush=True)

    # ------------------------------------------------------------------- run --
    def run(self) -> dict:
        self.start()
        print("warming up …", flush=True)
        self.warm_up()
        print(f"measuring ({self.dur:g} s per run; load: {'wrk' if self.use_wrk else 'asyncio'} for non-streaming, "
              "asyncio client for streams)", flush=True)
        for c in (1, 16, 64):
            self.pair(f"nonstream_c{c}", stream=False, concurrency=c)
        self.breakdown()
        # Paced streams: workers start spread over one event period and pause a random 0-20 ms between
        # streams. Without the pause, closed-loop workers whose streams all last the same time phase-lock:
        # two starts that collide leave together and collide again on every later round, so starts
        # arrive in growing clumps, a pattern of the load generator that real clients do not have.
        # The lockstep variant keeps that pattern, to show what clumped arrivals cost.
        for c in (16, 256):
            self.pair(f"stream_paced_c{c}", stream=True, concurrency=c, deltas=20, delay_ms=20, ramp=0.02, think=0.02)
        self.pair("stream_lockstep_c16", stream=True, concurrency=16, deltas=20, delay_ms=20, ramp=0.02)
        for c in (16, 256):
            self.pair(f"stream_burst_c{c}", stream=True, concurrency=c, deltas=20, delay_ms=0)
        self.open_streams(1000)
        extras = {}
        from . import extras as extras_mod

        extras["litellm"] = extras_mod.litellm(self)
        if self.args.profile:
            extras["profile"] = extras_mod.profile(self)
        return self.finish(extras)

    def finish(self, extras: dict) -> dict:
        nonstream = {k: v for k, v in self.results.items() if k.startswith("nonstream") and "log" in v}
        best = max(nonstream, key=lambda k: nonstream[k]["gateway"]["rps"], default=None)
        log_check = dict(nonstream[best]["log"], workload=best) if best else None
        rows = report.comparison_rows(self.results) + report.extra_rows(self.results, log_check)
        print("\n" + report.render(rows))
        print("\nRequestLog rows per gateway workload (rows must be ≥ completed and ≤ sent):")
        print("\n".join(report.log_rows_lines(self.results)))
        foreign = {k: max(v[w]["procs"]["foreign_core1_pct"] for w in ("relay", "gateway") if w in v)
                   for k, v in self.results.items() if "gateway" in v and "procs" in v["gateway"]}
        disturbed = [k for k, v in foreign.items() if v > DISTURBED]
        if foreign:
            print(f"\nCore 1 busy with other work (other processes, unattributed kernel time) during the relay/gateway "
                  f"runs: max {max(foreign.values())}%"
                  + (f"; above {DISTURBED:g}% in {', '.join(disturbed)}: those numbers are disturbed"
                     if disturbed else ""))
        lite = extras.get("litellm", {})
        if lite.get("skipped"):
            print("\n" + lite["skipped"])
        elif lite.get("nonstream_c16"):
            r, g = lite["nonstream_c16"], self.results.get("nonstream_c16", {}).get("gateway")
            print(f"\nLiteLLM proxy (1 worker, core 1), non-stream c=16: {r['rps']:,.1f} req/s, p50 "
                  f"{r['latency_ms']['p50']} ms, p99 {r['latency_ms']['p99']} ms, errors {r['errors']}"
                  + (f"  |  gateway: {g['rps']:,.1f} req/s, p50 {g['latency_ms']['p50']} ms, "
                     f"p99 {g['latency_ms']['p99']} ms" if g else ""))
        return {"meta": meta(self), "results": self.results, "table": rows, "log_check": log_check,
                "core1_foreign_pct": foreign, **extras}


def meta(bench: Bench) -> dict:
    cpu = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name")), "?")
    wrk = subprocess.run(["wrk", "--version"], capture_output=True, text=True).stdout.split("\n")[0] \
        if bench.use_wrk else None
    return {"when": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "cpu": cpu, "cores": os.cpu_count(),
            "loadavg_end": open("/proc/loadavg").read().split()[:3],
            "python": platform.python_version(), "kernel": platform.release(), "wrk": wrk, "quick": bench.args.quick,
            "duration_s": bench.dur, "whatif": bench.args.whatif or None,
            "pinning": {"gateway": "core 1", "upstream+load+orchestrator": "core 0"},
            "database": bench.env["DATABASE_URL"].split("@")[-1]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="short smoke run (3 s per measurement)")
    ap.add_argument("--duration", type=float, help="seconds per measurement (default 10, --quick 3)")
    ap.add_argument("--json", default=str(RESULTS / "latest.json"), help="where to write the JSON results")
    ap.add_argument("--profile", action="store_true", help="py-spy profile of the gateway under non-stream c=16")
    ap.add_argument("--workers", type=int, default=1,
                    help="gateway worker processes; >1 spreads them over both cores (scale-out numbers)")
    ap.add_argument("--server", choices=("uvicorn", "granian"), default="uvicorn",
                    help="the gateway's ASGI server (uvicorn: what `make run` uses)")
    ap.add_argument("--only", default="", help="comma-separated substrings of workload names to run")
    ap.add_argument("--no-relay", action="store_true", help="skip the TCP-relay floor measurements")
    ap.add_argument("--whatif", default="", help="autogc,gcthresh,nolog,nometrics,gcstats,stockhandler,stocknomw,adrfdispatch,httpcore: size a cost (bench/whatif.py)")
    ap.add_argument("--retries", type=int, default=1,
                    help="re-measure a workload when core 1 was >10%% busy with other work (default 1)")
    args = ap.parse_args(argv)
    if (os.cpu_count() or 1) < 2:
        print("needs 2 cores (gateway on core 1, everything else on core 0)", file=sys.stderr)
        return 2
    RESULTS.mkdir(parents=True, exist_ok=True)
    for name in ("gateway.log", "upstream.log"):
        (RESULTS / name).unlink(missing_ok=True)
    procs.raise_fd_limit()
    os.sched_setaffinity(0, {0})
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    runner = procs.Procs(RESULTS)
    try:
        out = Bench(args, runner).run()
    except KeyboardInterrupt:
        print("\ninterrupted; stopping processes", file=sys.stderr)
        return 130
    finally:
        runner.stop_all()
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(out, indent=2, default=str))
    print(f"\nJSON: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
