"""Ops console on a big request log: dashboard and log-list times over generated RequestLog rows on PostgreSQL.

    .venv/bin/python -m bench.console_log                      # 1,000,000 rows over 30 days (default)
    .venv/bin/python -m bench.console_log --rows 200000 --days 7
    BENCH_CONSOLE_DATABASE_URL=postgres://user@host/db .venv/bin/python -m bench.console_log

Not a test. It creates (or empties) its own database, `gateway_bench_console` on the machine's PostgreSQL unless
BENCH_CONSOLE_DATABASE_URL names another, migrates it, generates the rows server-side (one INSERT … SELECT over
generate_series, in time order as the gateway appends them: realistic mixes of groups, deployments, keys, statuses, outcomes, errors, rejected parameters,
latencies and tokens), runs VACUUM ANALYZE as autovacuum eventually would, then requests each page through
Django's test client as a logged-in superuser: `--repeat` times after one warm-up, printing the median and the
slowest query of each page. Rows are generated once; `--keep` reuses them on the next run.
"""

import argparse
import os
import statistics
import sys
import time

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/gateway_bench_console"

GENERATE = """
INSERT INTO routing_requestlog (
    request_id, created_at, method, endpoint, path, stream, key_id, key_name, group_name, deployment_id,
    deployment_name, provider, status, upstream_status, latency_ms, ttfb_ms, overhead_ms, input_tokens, output_tokens,
    total_tokens, cached_tokens, reasoning_tokens, served_group, policy_changes, attempts, response_id,
    upstream_request_id, error_type, error_message, outcome, rejected_param, client_disconnected, bytes_out)
SELECT
    'req_' || md5(i::text || '-console-bench'),
    now() - %(days)s * interval '1 day' * (1 - i::float8 / %(rows)s) - random() * interval '1 second',
    'POST',
    CASE WHEN i %% 5 = 0 THEN 'chat' ELSE 'responses' END,
    CASE WHEN i %% 5 = 0 THEN '/v1/chat/completions' ELSE '/v1/responses' END,
    i %% 2 = 0,
    i %% 20, 'team-' || (i %% 20), 'group-' || (i %% 5), (i %% 15) + 1, 'deployment-' || (i %% 15), 'azure',
    s.status, s.status,
    s.latency, s.latency * 0.3, 0.2 + random(),
    (random() * 4000)::int, (random() * 800)::int, NULL, NULL, NULL, '',
    CASE WHEN i %% 2 = 0 THEN '[{"action": "drop", "path": "stream_options", "policy": "azure-responses"}]'::jsonb
         ELSE '[]'::jsonb END,
    '[]'::jsonb,
    'resp_' || md5(i::text || '-resp'), '',
    CASE WHEN s.status >= 400 THEN 'upstream_' || s.status ELSE '' END,
    CASE WHEN s.status = 400 THEN 'Unknown parameter: ''' || s.param || '''.'
         WHEN s.status >= 500 THEN 'The server had an error while processing your request (' || i || ').'
         WHEN s.status = 429 THEN 'Rate limit is exceeded. Try again in 3 seconds.' ELSE '' END,
    CASE WHEN s.status >= 400 THEN 'upstream_error' ELSE 'completed' END,
    CASE WHEN s.status = 400 THEN s.param ELSE '' END,
    false, 1000 + (random() * 20000)::int
FROM generate_series(1, %(rows)s) AS g(i)
CROSS JOIN LATERAL (
    SELECT CASE WHEN r < 0.002 THEN 400 WHEN r < 0.012 THEN 429 WHEN r < 0.03 THEN 500 ELSE 200 END AS status,
           (ARRAY['client_metadata', 'reasoning.summary', 'prompt_cache_retention'])[1 + (i %% 3)] AS param,
           exp(5 + random() * 3.5) AS latency
    FROM (SELECT random() + g.i * 0 AS r) AS roll
) AS s
"""


def database(url: str, *, keep: bool) -> None:
    from urllib.parse import urlsplit, urlunsplit

    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin_url = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if exists and not keep:
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        if not exists or not keep:
            conn.execute(f'CREATE DATABASE "{name}"')


def timed(client, path: str, repeat: int) -> tuple[float, float, int]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.get(path)  # warm-up: plans, caches
    runs, slowest, status = [], 0.0, 0
    for _ in range(repeat):
        with CaptureQueriesContext(connection) as queries:
            started = time.perf_counter()
            response = client.get(path)
            if response.streaming:
                b"".join(response)
            runs.append((time.perf_counter() - started) * 1000)
        status = response.status_code
        slowest = max([slowest] + [float(q["time"]) * 1000 for q in queries.captured_queries])
    return statistics.median(runs), slowest, status


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--keep", action="store_true", help="reuse the rows of a previous run")
    args = parser.parse_args()
    url = os.environ.get("BENCH_CONSOLE_DATABASE_URL", DEFAULT_URL)
    if not url.startswith("postgres"):
        print("bench.console_log measures PostgreSQL; BENCH_CONSOLE_DATABASE_URL must be postgres://…")
        return 2
    database(url, keep=args.keep)
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gateway.settings")
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client

    from routing.models import RequestLog

    call_command("migrate", interactive=False, verbosity=0)
    have = RequestLog.objects.count()
    if have < args.rows:
        started = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute(GENERATE, {"rows": args.rows - have, "days": args.days})
        print(f"generated {args.rows - have:,} rows in {time.perf_counter() - started:.1f} s")
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE routing_requestlog")
        cursor.execute("SELECT pg_size_pretty(pg_total_relation_size('routing_requestlog'))")
        size = cursor.fetchone()[0]
    print(f"VACUUM ANALYZE {time.perf_counter() - started:.1f} s; table with indexes: {size}")

    user = get_user_model().objects.filter(username="bench").first() or \
        get_user_model().objects.create_superuser("bench", "", "bench-password-not-used")
    client = Client()
    client.force_login(user)
    sample = RequestLog.objects.order_by("-created_at").values("request_id", "response_id").first()
    pages = [
        ("dashboard, last 24h", "/admin/routing/requestlog/dashboard/?window=24h"),
        ("dashboard, last 7d", "/admin/routing/requestlog/dashboard/?window=7d"),
        ("dashboard, last 30d (every row)", "/admin/routing/requestlog/dashboard/?window=30d"),
        ("dashboard, 30d, one group", "/admin/routing/requestlog/dashboard/?window=30d&group=group-1"),
        ("log list, unfiltered", "/admin/routing/requestlog/"),
        ("log list, page 100", "/admin/routing/requestlog/?p=99"),
        ("log list, last 1h", "/admin/routing/requestlog/?last=1h"),
        ("log list, has error", "/admin/routing/requestlog/?has_error=yes"),
        ("log list, outcome upstream_error", "/admin/routing/requestlog/?outcome=upstream_error"),
        ("log list, group + status 5xx", "/admin/routing/requestlog/?group_name=group-2&status=5xx"),
        ("log list, sorted by latency", "/admin/routing/requestlog/?o=-6"),
        ("log list, search request id", f"/admin/routing/requestlog/?q={sample['request_id']}"),
        ("log list, search response id", f"/admin/routing/requestlog/?q={sample['response_id']}"),
        ("log list, search key name", "/admin/routing/requestlog/?q=team-7"),
        ("log list, search error text", "/admin/routing/requestlog/?q=reasoning.summary"),
        ("log list, search absent text", "/admin/routing/requestlog/?q=no-such-text-anywhere"),
        ("log detail", f"/admin/routing/requestlog/{RequestLog.objects.order_by('-id').values_list('id', flat=True).first()}/change/"),
        ("CSV export, last 1h", "/admin/routing/requestlog/export.csv?last=1h"),
    ]
    print(f"\n{RequestLog.objects.count():,} rows over {args.days} days; median of {args.repeat} runs after a warm-up\n")
    print(f"{'page':40} {'median ms':>10} {'slowest query ms':>17}  status")
    for label, path in pages:
        median, slowest, status = timed(client, path, args.repeat)
        print(f"{label:40} {median:10.1f} {slowest:17.1f}  {status}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
