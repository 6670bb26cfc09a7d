"""Turning raw workload results into the comparison table and the target verdicts."""


def _get(result: dict | None, path: str):
    value = result
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _fmt(v, unit: str = "") -> str:
    if v is None:
        return "—"
    if isinstance(v, str):
        return v
    if isinstance(v, float):
        text = f"{v:,.1f}" if abs(v) >= 100 else f"{v:.3f}" if abs(v) < 10 else f"{v:.2f}"
    else:
        text = f"{v:,}"
    return text + unit


# (metric label, path in a result, unit, is-a-latency: overhead = gateway - direct)
NONSTREAM = [("req/s", "rps", "", False), ("p50", "latency_ms.p50", " ms", True),
             ("p95", "latency_ms.p95", " ms", True), ("p99", "latency_ms.p99", " ms", True),
             ("errors", "errors", "", False)]
STREAM = [("streams/s", "rps", "", False), ("headers p50", "headers_ms.p50", " ms", True),
          ("TTFB p50", "ttfb_ms.p50", " ms", True),
          ("TTFB p95", "ttfb_ms.p95", " ms", True), ("TTLB p50", "latency_ms.p50", " ms", True),
          ("TTLB p95", "latency_ms.p95", " ms", True), ("errors", "errors", "", False)]
GAPS = [("gap mean", "gap_ms.mean", " ms", True), ("gap p50", "gap_ms.p50", " ms", True),
        ("gap p95", "gap_ms.p95", " ms", True), ("same-read", "gaps_same_read", "", False)]

# workload → {metric label: (target text, check(direct, gateway) -> bool)}
# (the targets of the design-card work: DRF views, StreamingHttpResponse, httpx on the hot path)
TARGETS = {
    "nonstream_c1": {"p50": ("overhead ≤ 1.5 ms", lambda d, g: g - d <= 1.5),
                     "p99": ("overhead ≤ 4 ms", lambda d, g: g - d <= 4.0)},
    "nonstream_c16": {"req/s": ("gw ≥ 1,000", lambda d, g: g >= 1000), "p99": ("gw ≤ 30 ms", lambda d, g: g <= 30),
                      "errors": ("gw = 0", lambda d, g: g == 0)},
    "stream_paced_c16": {"TTFB p50": ("overhead ≤ 2 ms", lambda d, g: g - d <= 2.0),
                         "gap mean": ("|Δ| ≤ 1 ms", lambda d, g: abs(g - d) <= 1.0),
                         "gap p50": ("|Δ| ≤ 1 ms", lambda d, g: abs(g - d) <= 1.0),
                         "same-read": ("gw ≤ 1% (no batching)", lambda d, g: g <= 0.01)},
}


def comparison_rows(results: dict) -> list[dict]:
    rows = []
    for name, wl in results.items():
        if "direct" not in wl or "gateway" not in wl or name.startswith("breakdown"):
            continue
        metrics = NONSTREAM if name.startswith("nonstream") else STREAM + (GAPS if "paced" in name or "lockstep" in name else [])
        shown = name + (" *" if wl.get("disturbed") else "")  # * core 1 was busy with other work meanwhile
        for label, path, unit, latency in metrics:
            d, g, r = _get(wl["direct"], path), _get(wl["gateway"], path), _get(wl.get("relay"), path)
            row = {"workload": shown, "metric": label, "direct": d, "relay": r, "gateway": g, "unit": unit,
                   "overhead": round(g - d, 3) if latency and d is not None and g is not None else None,
                   "net": round(g - r, 3) if latency and r is not None and g is not None else None,
                   "ratio": round(g / d, 2) if d and g is not None and label not in ("errors", "same-read") else None}
            target = TARGETS.get(name, {}).get(label)
            if target and d is not None and g is not None:
                row["target"], row["pass"] = target[0], bool(target[1](d, g))
            rows.append(row)
        p = wl["gateway"].get("procs") or {}
        if (p.get("cpu_pct") or {}).get("gateway") is not None:
            rows.append({"workload": shown, "metric": "gw CPU (sys)",
                         "gateway": f"{p['cpu_pct']['gateway']}% ({p['cpu_sys_pct']['gateway']}%)"})
    return rows


def extra_rows(results: dict, log_check: dict | None) -> list[dict]:
    rows = []
    bd = results.get("breakdown_c1")
    if bd:
        rows.append({"workload": "breakdown_c1", "metric": "overhead p50", "overhead": bd["client_overhead_p50_ms"],
                     "gateway": bd["gateway"]["latency_ms"]["p50"], "direct": bd["direct"]["latency_ms"]["p50"],
                     "unit": " ms"})
        rows.append({"workload": "breakdown_c1", "metric": "in view p50", "gateway": bd["view_overhead_p50_ms"],
                     "unit": " ms"})
        rows.append({"workload": "breakdown_c1", "metric": "outside view", "gateway": bd["outside_view_p50_ms"],
                     "unit": " ms"})
    op = results.get("open_streams")
    if op:
        g = op["gateway"]
        want = op["streams"]
        rows.append({"workload": f"open_{want}", "metric": "peak open", "gateway": g.get("peak_open"),
                     "target": f"= {want}", "pass": g.get("peak_open") == want})
        rows.append({"workload": f"open_{want}", "metric": "errors", "gateway": g.get("errors"),
                     "target": "= 0", "pass": g.get("errors") == 0 and g.get("completed") == want})
        rss = op.get("gateway_peak_rss_mb")
        rows.append({"workload": f"open_{want}", "metric": "gw peak RSS", "gateway": rss, "unit": " MB",
                     "target": "≤ 300 MB", "pass": rss is not None and rss <= 300})
    if log_check:
        rows.append({"workload": f"log@{log_check['workload']}", "metric": "rows written", "gateway": log_check["rows"],
                     "direct": None, "target": f"{log_check['completed']:,} ≤ rows ≤ {log_check['sent']:,}",
                     "pass": log_check["completed"] <= log_check["rows"] <= log_check["sent"]})
    return rows


def render(rows: list[dict]) -> str:
    head = ("workload", "metric", "direct", "tcp relay", "gateway", "overhead", "gw-relay", "ratio", "target", "result")
    table = [head]
    for r in rows:
        unit = r.get("unit", "")
        table.append((r["workload"], r["metric"], _fmt(r.get("direct"), unit),
                      _fmt(r.get("relay"), unit) if "relay" in r else "", _fmt(r.get("gateway"), unit),
                      _fmt(r.get("overhead"), " ms") if r.get("overhead") is not None else "",
                      _fmt(r.get("net"), " ms") if r.get("net") is not None else "",
                      f"{r['ratio']:.2f}x" if r.get("ratio") is not None else "", r.get("target", ""),
                      ("PASS" if r["pass"] else "MISS") if "pass" in r else ""))
    if not any(r.get("relay") is not None for r in rows):  # run without the relay: drop its two columns
        table = [tuple(c for j, c in enumerate(row) if j not in (3, 6)) for row in table]
    left = {0, 1, len(table[0]) - 2, len(table[0]) - 1}  # workload, metric, target, result
    widths = [max(len(str(row[i])) for row in table) for i in range(len(table[0]))]
    lines = []
    for i, row in enumerate(table):
        cells = [str(c).ljust(w) if j in left else str(c).rjust(w) for j, (c, w) in enumerate(zip(row, widths))]
        lines.append("  ".join(cells).rstrip())
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    prev = None
    out = []
    for line, row in zip(lines, [None, None] + rows):
        if row is not None and prev is not None and row["workload"] != prev:
            out.append("")
        out.append(line)
        prev = row["workload"] if row is not None else prev
    return "\n".join(out)


def log_rows_lines(results: dict) -> list[str]:
    lines = []
    for name, wl in results.items():
        log = wl.get("log") if isinstance(wl, dict) else None
        if log:
            cut = log["sent"] - log["rows"]
            lines.append(f"  {name:<20} rows {log['rows']:>8,}  completed {log['completed']:>8,}  "
                         f"sent {log['sent']:>8,}  not logged {cut:,}  (flush wait {log['wait_s']:.1f} s)")
    return lines
