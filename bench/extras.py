"""Optional parts of the run: the same workload against LiteLLM proxy, and a py-spy profile."""

import importlib.util
import os
import shutil
import sys
import threading
import time
from pathlib import Path

from . import load, procs
from . import profile as prof


def _litellm_cmd() -> list[str] | None:
    exe = Path(sys.executable).parent / "litellm"
    if exe.exists():
        return [str(exe)]
    if shutil.which("litellm"):
        return [shutil.which("litellm")]
    if importlib.util.find_spec("litellm") is not None:
        return [sys.executable, "-m", "litellm"]
    return None


def litellm(bench) -> dict:
    """Non-stream c=16 against LiteLLM proxy (one worker, core 1) routed to the same fake upstream."""
    cmd = _litellm_cmd()
    if cmd is None:
        return {"skipped": "LiteLLM not installed; skipped"}
    from .run import RESULTS

    port = procs.free_port()
    config = RESULTS / "litellm.yaml"
    config.write_text(
        "model_list:\n"
        "  - model_name: bench\n"
        "    litellm_params:\n"
        "      model: openai/bench-model\n"
        f"      api_base: http://127.0.0.1:{bench.up_port}/openai/v1\n"
        "      api_key: bench-upstream-key\n"
        "general_settings:\n"
        "  master_key: sk-bench-litellm\n"
    )
    env = {k: v for k, v in os.environ.items()  # the gateway's DATABASE_URL would make LiteLLM want Prisma
           if k not in ("DATABASE_URL", "REDIS_URL") and not k.startswith(("GATEWAY_", "DJANGO_"))}
    env["LITELLM_LOG"] = "ERROR"
    proc = bench.procs.start("litellm", cmd + ["--config", str(config), "--host", "127.0.0.1", "--port", str(port),
                                               "--num_workers", "1"], cpu="1", env=env)
    try:
        procs.wait_http(port, "/health/liveliness", proc, timeout=120, name="litellm")
        url, _, body = bench.target("gateway", stream=False)
        url = f"http://127.0.0.1:{port}/v1/responses"
        headers = {"Authorization": "Bearer sk-bench-litellm"}
        with procs.Sampler({"litellm": proc.pid, "upstream": bench.upstream.pid}) as sampler:
            if bench.use_wrk:
                result = load.run_wrk(url, body, headers, concurrency=16, duration=bench.dur,
                                      script_path=str(RESULTS / "wrk-litellm.lua"))
            else:
                result = bench.client(url, headers, body, concurrency=16, duration=bench.dur)
        result["procs"] = sampler.summary()
        gw = bench.results.get("nonstream_c16", {}).get("gateway", {})
        print(f"  litellm nonstream_c16  {result['rps']:,.1f}/s  p50 {result['latency_ms']['p50']} ms  "
              f"p99 {result['latency_ms']['p99']} ms  errors {result['errors']}  "
              f"(gateway: {gw.get('rps', '—')}/s)", flush=True)
        return {"nonstream_c16": result}
    except Exception as exc:  # optional: never fail the run for it
        print(f"LiteLLM run failed: {exc}", flush=True)
        return {"error": str(exc)}
    finally:
        bench.procs.stop(proc)


def profile(bench) -> dict:
    """py-spy on the gateway while wrk (or the asyncio client) drives non-stream c=16."""
    from .run import RESULTS

    if prof.ensure_pyspy() is None:
        print("py-spy unavailable; no profile", flush=True)
        return {"error": "py-spy unavailable"}
    seconds = 4 if bench.args.quick else 8
    raw, svg = RESULTS / "profile.txt", RESULTS / "profile.svg"
    url, headers, body = bench.target("gateway", stream=False)
    box: dict = {}

    def drive() -> None:
        total = 2 * seconds + 4
        if bench.use_wrk:
            box["load"] = load.run_wrk(url, body, headers, concurrency=16, duration=total,
                                       script_path=str(RESULTS / "wrk-profile.lua"))
        else:
            box["load"] = bench.client(url, headers, body, concurrency=16, duration=total)

    print(f"profiling the gateway (py-spy, {seconds} s raw + {seconds} s flame graph) under non-stream c=16 …",
          flush=True)
    driver = threading.Thread(target=drive, daemon=True)
    driver.start()
    time.sleep(1.0)
    cpu0, t0 = procs.cpu_seconds(bench.gateway.pid), time.monotonic()
    ok = prof.record(bench.gateway.pid, seconds, raw, "raw", gil=True)
    cpu1, t1 = procs.cpu_seconds(bench.gateway.pid), time.monotonic()
    prof.record(bench.gateway.pid, seconds, svg, "flamegraph")
    driver.join()
    if not ok:
        return {"error": "py-spy record failed"}
    summary = prof.summarize(raw)
    summary["gateway_cpu_pct"] = round((cpu1 - cpu0) / (t1 - t0) * 100, 1)
    summary["seconds"] = seconds
    summary["load"] = box.get("load")
    text = prof.render(summary)
    (RESULTS / "profile-summary.txt").write_text(text + "\n")
    rps = (box.get("load") or {}).get("rps")
    print(f"\ngateway CPU during profile: {summary['gateway_cpu_pct']}%   load: {rps} req/s under py-spy   "
          f"thread pools created: ~{summary['thread_pool_executor_span'] / seconds:,.0f}/s")
    print(text)
    print(f"\nprofile files: {raw}, {svg}, {RESULTS / 'profile-summary.txt'}")
    return summary
