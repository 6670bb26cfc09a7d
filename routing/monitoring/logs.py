"""How the gateway's own log lines look: JSON lines or plain text, with secrets masked.

gateway/settings.py's LOGGING uses these for every logger: the gateway's, Django's and Python
warnings. `configure()` (Django's LOGGING_CONFIG) also gives uvicorn's own handlers the same
formatter and filter. Those handlers are kept, so `--log-level` and `--no-access-log` still apply.
Only a `--workers` supervisor, which never loads the application, prints its few lines as plain text.
`GATEWAY_LOG_FORMAT=json` (the default) writes one JSON object per line:

    {"level": "INFO", "logger": "gateway.requests", "message": "POST /v1/responses 200 completed ...",
     "request_id": "req_…", "group": "azure-gpt-5.5", ..., "time": "2026-12-02T10:00:00.123456+00:00"}

`GATEWAY_LOG_FORMAT=text` (what `make run` uses) writes `time LEVEL logger message`.

No line carries a secret: the gateway never logs keys or headers, and `RedactSecrets` masks
what looks like one in any message or traceback anyway (`Bearer …`, `sk-…` keys,
`api-key=…`/`"api_key": "…"`), whoever logged it (an upstream's error text, a library).
This module imports no Django: the logging configuration loads it before the apps.
"""

import logging
import logging.config
import re

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.orjson import OrjsonFormatter

MASK = "[redacted]"
_SECRETS = re.compile(
    r"(?P<scheme>\b(?:bearer|basic)\s+)[A-Za-z0-9._~+/=-]{6,}"
    r"|\bsk-[A-Za-z0-9_-]{6,}"
    r"|(?P<name>\b(?:api[-_]?key|x-api-key|authorization|password|secret|access[-_]?token)"
    r"[\"']?\s*[:=]\s*[\"']?)[^\s\"',;&]{4,}",
    re.IGNORECASE,
)


def _mask(match: re.Match) -> str:
    if match.group("scheme"):
        return match.group("scheme") + MASK
    if match.group("name"):
        return match.group("name") + MASK
    return "sk-" + MASK


def redact(text: str) -> str:
    """`text` with anything that looks like a credential replaced by [redacted]."""
    return _SECRETS.sub(_mask, text) if text else text


class RedactSecrets(logging.Filter):
    """Masks credentials in a record's message and traceback before any formatter sees them."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: leave it to the formatter to report
            return True
        masked = redact(message)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
            record.exc_info = None  # formatters then print the masked exc_text
        return True


def configure(config: dict) -> None:
    """Django's LOGGING_CONFIG: apply LOGGING, then format uvicorn's handlers like ours."""
    logging.config.dictConfig(config)
    console = next((h for h in logging.getLogger().handlers if h.name == "console"), None)
    if console is not None:
        share_format(console, ("uvicorn", "uvicorn.access"))


def share_format(source: logging.Handler, logger_names) -> None:
    """Give these loggers' own handlers `source`'s formatter and filters (their streams and levels stay)."""
    for name in logger_names:
        for handler in logging.getLogger(name).handlers:
            handler.setFormatter(source.formatter)
            for log_filter in source.filters:
                if log_filter not in handler.filters:
                    handler.addFilter(log_filter)


class JsonFormatter(OrjsonFormatter):
    """python-json-logger's orjson formatter: level, logger, message, the record's extras, time (UTC)."""

    def __init__(self, **kwargs) -> None:
        super().__init__(
            "%(levelname)s %(name)s %(message)s",
            rename_fields={"levelname": "level", "name": "logger"},
            timestamp="time",
            reserved_attrs=[*RESERVED_ATTRS, "color_message"],  # uvicorn's coloured copy of its message
            **kwargs,
        )
