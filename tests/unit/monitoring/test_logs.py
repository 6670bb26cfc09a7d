"""routing/monitoring/logs.py and request_lines.py: JSON lines that parse, secrets masked, one line
per request as GATEWAY_LOG_REQUESTS says."""

import io
import json
import logging
from datetime import datetime, timezone

import pytest

from routing.audit.logwriter import LogRecord, build_entry
from routing.monitoring.logs import JsonFormatter, RedactSecrets, redact, share_format
from routing.monitoring.request_lines import RequestLines, fields_of


def test_credentials_are_masked():
    cases = {
        "Authorization: Bearer sk-gw-abcd1234-SECRETSECRET": "SECRETSECRET",
        "upstream said: Incorrect API key provided: sk-proj-AbCdEf123456": "AbCdEf123456",
        'body {"api_key": "hunter2hunter2"}': "hunter2",
        "url https://x/?api-key=zzzz9999&x=1": "zzzz9999",
        "basic dXNlcjpwYXNzd29yZA==": "dXNlcjpwYXNzd29yZA",
        "x-api-key=abcdefgh": "abcdefgh",
    }
    for text, secret in cases.items():
        masked = redact(text)
        assert secret not in masked and "[redacted]" in masked, (text, masked)
    assert redact("POST /v1/responses 200 completed group=sk") == "POST /v1/responses 200 completed group=sk"


def _handler(formatter: logging.Formatter) -> tuple[logging.Logger, io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    handler.addFilter(RedactSecrets())
    logger = logging.getLogger(f"test.monitoring.{id(stream)}")
    logger.handlers, logger.propagate, logger.level = [handler], False, logging.INFO
    return logger, stream


def test_json_lines_carry_extras_and_masked_tracebacks():
    logger, stream = _handler(JsonFormatter())
    logger.info("hello %s", "world", extra={"request_id": "req_1", "status": 200, "color_message": "x"})
    try:
        raise RuntimeError("refused key sk-live-0123456789abcdef")
    except RuntimeError:
        logger.exception("failed with %s", "Bearer abcdefghijkl")
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["message"] == "hello world" and first["level"] == "INFO" and first["logger"].startswith("test.")
    assert (first["request_id"], first["status"]) == ("req_1", 200) and "color_message" not in first
    assert datetime.fromisoformat(first["time"]).tzinfo is not None
    assert second["level"] == "ERROR" and "RuntimeError" in second["exc_info"]
    assert "0123456789abcdef" not in stream.getvalue() and "abcdefghijkl" not in stream.getvalue()


def test_text_lines_mask_too():
    logger, stream = _handler(logging.Formatter("%(levelname)s %(message)s"))
    logger.warning("upstream answered: %s", '{"error": "bad api_key: AAAABBBBCCCC"}')
    assert stream.getvalue().startswith("WARNING upstream answered") and "AAAABBBBCCCC" not in stream.getvalue()


def test_uvicorns_handlers_get_our_format_and_keep_their_choices():
    console = logging.StreamHandler(io.StringIO())
    console.setFormatter(JsonFormatter())
    console.addFilter(RedactSecrets())
    access = logging.getLogger("test.monitoring.uvicorn.access")
    own = logging.StreamHandler(io.StringIO())
    access.handlers, access.propagate = [own], False
    access.setLevel(logging.WARNING)  # what `--log-level warning` set
    share_format(console, [access.name, "test.monitoring.no-handlers"])
    assert access.handlers == [own] and access.level == logging.WARNING
    assert own.formatter is console.formatter and own.filters == console.filters
    assert logging.getLogger("test.monitoring.no-handlers").handlers == []  # `--no-access-log` stays off
    access.warning('127.0.0.1:1 - "GET /x?api-key=%s HTTP/1.1" 200', "SECRETSECRET")
    line = json.loads(own.stream.getvalue())
    assert line["logger"] == access.name and "SECRETSECRET" not in line["message"]


def row(**kw) -> tuple:
    base = dict(request_id="req_1", created_at=datetime(2026, 12, 1, tzinfo=timezone.utc), method="POST",
                endpoint="responses", path="/v1/responses", status=200, outcome="completed", key_name="team-a",
                group_name="gpt", deployment_id=7, deployment_name="east", latency_ms=12.5, ttfb_ms=3.0,
                attempts=[{"deployment_id": 7, "status": 200}])
    return tuple(build_entry(LogRecord(**{**base, **kw}))[0])


@pytest.mark.parametrize(("mode", "expected"), [("all", ["req_ok", "req_bad"]), ("errors", ["req_bad"]), ("off", [])])
def test_which_requests_get_a_line(mode, expected, caplog):
    rows = [row(request_id="req_ok"), row(request_id="req_bad", status=502, outcome="upstream_failed",
                                           error_type="connect_error", error_message="Bearer abcdefghijkl failed")]
    with caplog.at_level(logging.INFO, logger="gateway.requests"):
        RequestLines(mode).emit(rows)
    assert [r.request_id for r in caplog.records] == expected
    for record in caplog.records:
        assert record.levelno == (logging.WARNING if record.status >= 500 else logging.INFO)
        assert "abcdefghijkl" not in record.getMessage() + str(getattr(record, "error", ""))


def test_a_line_has_the_requests_fields():
    fields = fields_of(row())
    assert {k: fields[k] for k in ("request_id", "group", "deployment", "status", "latency_ms", "ttfb_ms",
                                   "attempts", "key_name")} == {
        "request_id": "req_1", "group": "gpt", "deployment": "east", "status": 200, "latency_ms": 12.5,
        "ttfb_ms": 3.0, "attempts": 1, "key_name": "team-a"}


def test_an_unknown_mode_is_refused():
    from django.core.exceptions import ImproperlyConfigured

    with pytest.raises(ImproperlyConfigured):
        RequestLines("some")
