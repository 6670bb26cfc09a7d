"""Operations: probes, Prometheus metrics and the gateway's own logs (README "Operations").

- `views`: `/healthz` (the process answers), `/readyz` (database, routes, log writer: `readiness`)
  and `/metrics`, served by gateway/asgi.py without the admin's middleware.
- `observer`: a thread that turns finished requests' log rows into metrics (`metrics`) and
  per-request log lines (`logs`), a batch at a time, off the event loop.
- `multiproc`: the Prometheus multiprocess directory every worker of one server writes to.
- `logs`: JSON or text formatting, secrets masked (configured from gateway/settings.py).
"""
