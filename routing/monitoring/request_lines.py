"""One log line per request, written by the observer's thread from the request's log row.

GATEWAY_LOG_REQUESTS says which requests get a line (README "Operations"):
- `errors` (the default): every request whose outcome is not `completed`: upstream errors,
  failures, broken streams, disconnects, refusals. That is little in normal operation, and it is
  the part worth reading in a log aggregator. The database row of every request holds the rest.
- `all`: every request. A line is about 0.6 KB: 50 GB a day at 1,000 requests a second.
- `off`: none.

The line's message reads well as text (`POST /v1/responses 200 completed group=… 12.3 ms`),
and in JSON its fields are separate. The values come from the row, already fitted to its
columns. The error message is cut to ERROR_CHARS, and anything in it that looks like a
credential is masked (logs.redact). Keys and headers are never part of a line.
"""

import logging

import orjson
from django.core.exceptions import ImproperlyConfigured

from routing.audit.logwriter import _LOG_FIELDS
from routing.monitoring.logs import redact

log = logging.getLogger("gateway.requests")
MODES = ("all", "errors", "off")
ERROR_CHARS = 500
_AT = {name: i for i, name in enumerate(_LOG_FIELDS)}
_FIELDS = ("request_id", "method", "path", "endpoint", "status", "outcome", "stream", "key_name", "group_name",
           "served_group", "deployment_id", "deployment_name", "upstream_status", "latency_ms", "ttfb_ms",
           "overhead_ms", "input_tokens", "output_tokens", "error_type")
_RENAMED = {"group_name": "group", "deployment_name": "deployment"}
_PICK = tuple((_RENAMED.get(name, name), _AT[name]) for name in _FIELDS)
OUTCOME, STATUS, ATTEMPTS, ERROR = _AT["outcome"], _AT["status"], _AT["attempts"], _AT["error_message"]


class RequestLines:
    def __init__(self, mode: str) -> None:
        if mode not in MODES:
            raise ImproperlyConfigured(f"GATEWAY_LOG_REQUESTS must be one of {', '.join(MODES)}, not {mode!r}")
        self.mode = mode

    def wanted(self, row) -> bool:
        return self.mode == "all" or (self.mode == "errors" and row[OUTCOME] != "completed")

    def emit(self, rows) -> None:
        if self.mode == "off" or not log.isEnabledFor(logging.INFO):
            return
        for row in rows:
            if self.wanted(row):
                fields = fields_of(row)
                level = logging.WARNING if (row[STATUS] or 0) >= 500 else logging.INFO
                log.log(level, summary(fields), extra=fields)


def fields_of(row) -> dict:
    fields = {name: row[i] for name, i in _PICK}
    attempts = orjson.loads(row[ATTEMPTS]) if row[ATTEMPTS] != "[]" else []
    fields["attempts"] = len(attempts) if isinstance(attempts, list) else 0
    if row[ERROR]:
        fields["error"] = redact(row[ERROR][:ERROR_CHARS])
    return fields


def summary(f: dict) -> str:
    parts = [f"{f['method']} {f['path']} {f['status']} {f['outcome']}"]
    if f["group"]:
        parts.append(f"group={f['group']}")
    if f["deployment"]:
        parts.append(f"deployment={f['deployment']}")
    if f["latency_ms"] is not None:
        parts.append(f"{f['latency_ms']:.1f} ms")
    if f["ttfb_ms"] is not None:
        parts.append(f"ttfb {f['ttfb_ms']:.1f} ms")
    if f["error_type"]:
        parts.append(f"error={f['error_type']}")
    parts.append(f["request_id"])
    return " ".join(parts)
