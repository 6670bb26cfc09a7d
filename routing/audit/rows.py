"""A log record as the database will take it: every value fitted to its column.

Whatever a client or an upstream sent (a NUL in a model name, a 10 kB path, an
`x-request-id` of a megabyte, a token count past 2**31, a lone surrogate from JSON)
ends up as a value its column accepts on every backend, PostgreSQL included:

- text: NUL becomes the four characters `\\x00` (PostgreSQL text cannot hold it), text
  that is not valid Unicode (lone surrogates) is backslash-escaped, then the value is
  clipped to the column's `max_length` with a marker: `…` for short columns, else
  `…[N chars]` (N: the length before clipping). TextFields are capped at TEXT_LIMIT.
- integers: clamped to the column's range on this database; anything not an int is NULL
  (or 0 where the column is NOT NULL). Floats that are not finite become NULL.
- JSON: strings and keys are escaped as above (jsonb refuses `\\u0000`), values JSON
  cannot hold become text, and a document over JSON_LIMIT bytes is replaced by
  `[{"truncated": true, "bytes": N, "head": "…"}]`.

The limits come from the models' fields (`RequestLog`, `ResponseAffinity`), never from
copies. The result is an `Entry`: the INSERT parameters of the log row plus its affinity
rows, plain JSON values only (timestamps as text in the form the database takes), so the
same entry can be journaled, replayed and inserted unchanged.

Affinity ids that do not fit their column are not stored (a clipped id would point
nowhere, or at another response); the log row keeps the clipped id with its marker.
"""

from __future__ import annotations

import functools
import math
import operator
from datetime import datetime, timedelta, timezone

import orjson

TEXT_LIMIT = 16_000  # characters in a TextField (error messages)
JSON_LIMIT = 64_000  # bytes of one JSON column
JSON_DEPTH = 32  # deeper structures are stored as text
_SHORT = 40  # columns at most this long get the one-character marker


def clean_text(value, limit: int | None = None) -> str:
    """`value` as text any database stores: NUL and invalid Unicode escaped, clipped to `limit`."""
    if not isinstance(value, str):
        value = "" if value is None else str(value)
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            value = value.encode("utf-8", "backslashreplace").decode("utf-8")
    if "\x00" in value:
        value = value.replace("\x00", "\\x00")
    if limit is not None and len(value) > limit:
        value = clip(value, limit)
    return value


def clip(value: str, limit: int) -> str:
    marker = "…" if limit <= _SHORT else f"…[{len(value)} chars]"
    return value[: max(0, limit - len(marker))] + marker[:limit]


def _json_safe(value, depth: int = 0):
    if isinstance(value, str):
        return clean_text(value)
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value if -(2**63) <= value < 2**64 else str(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if depth >= JSON_DEPTH:
        return clean_text(repr(value), TEXT_LIMIT)
    if isinstance(value, dict):
        return {clean_text(k if isinstance(k, str) else repr(k)): _json_safe(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v, depth + 1) for v in value]
    return clean_text(str(value), TEXT_LIMIT)


def clean_json(value, limit: int = JSON_LIMIT) -> str:
    """JSON text for a json/jsonb column: never raises, never holds `\\u0000`, at most ~`limit` bytes."""
    try:
        data = orjson.dumps(value)
    except (TypeError, ValueError):  # orjson.JSONEncodeError: surrogates, big ints, depth, odd types
        data = None
    if data is None or b"\\u0000" in data:
        data = orjson.dumps(_json_safe(value))
    if len(data) > limit:
        head = clean_text(data[: limit // 2].decode("utf-8", "ignore"))
        data = orjson.dumps([{"truncated": True, "bytes": len(data), "head": head}])
    return data.decode()


# --- per-column normalisers, derived from the model fields -------------------------------------------------------

def _text_of(field):
    limit = field.max_length or TEXT_LIMIT
    return lambda value: clean_text(value, limit)


def _int_of(field, low, high):
    nullable = field.null

    def norm(value):
        if not isinstance(value, int) or isinstance(value, bool):
            if isinstance(value, bool):
                value = int(value)
            elif isinstance(value, float) and math.isfinite(value):
                value = int(value)
            else:
                return None if nullable else 0
        if low is not None and value < low:
            return low
        if high is not None and value > high:
            return high
        return value

    return norm


def _float_of(field):
    nullable = field.null

    def norm(value):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return None if nullable else 0.0
        return float(value)

    return norm


def _normaliser(field, connection):
    from django.db import models

    if isinstance(field, models.JSONField):
        return clean_json
    if isinstance(field, models.BooleanField):
        return bool
    if isinstance(field, models.FloatField):
        return _float_of(field)
    if isinstance(field, models.IntegerField):  # also Small/Big/Positive*
        low, high = connection.ops.integer_field_range(field.get_internal_type())
        return _int_of(field, low, high)
    if isinstance(field, (models.CharField, models.TextField)):
        return _text_of(field)
    if isinstance(field, models.DateTimeField):
        return None  # handled by the timestamp adapter
    raise TypeError(f"no normaliser for {field!r}")


def _sqlite_timestamp(value: datetime) -> str:
    """What Django stores in SQLite for an aware UTC datetime: naive ISO text."""
    if value.tzinfo is not timezone.utc:
        value = value.astimezone(timezone.utc)
    return value.replace(tzinfo=None).isoformat(" ")


def _iso_timestamp(value: datetime) -> str:
    return (value if value.tzinfo is timezone.utc else value.astimezone(timezone.utc)).isoformat()


class RowBuilder:
    """Builds entries for the configured database (made once per process, see `builder()`)."""

    def __init__(self, log_fields: list[str]) -> None:
        from django.db import connection

        from routing.models import RequestLog, ResponseAffinity

        self.log_fields = log_fields
        self.vendor = connection.vendor
        self.timestamp = _sqlite_timestamp if self.vendor == "sqlite" else _iso_timestamp
        fields = [RequestLog._meta.get_field(name) for name in log_fields]
        self._values = operator.attrgetter(*log_fields)
        self._norms = [(i, _normaliser(f, connection)) for i, f in enumerate(fields)]
        self._times = [i for i, f in enumerate(fields) if f.get_internal_type() == "DateTimeField"]
        self._norms = [(i, n) for i, n in self._norms if n is not None]
        self._texts = [(i, f.max_length or TEXT_LIMIT) for i, f in enumerate(fields)
                       if f.get_internal_type() in ("CharField", "TextField")]
        self._ints = [(i, *connection.ops.integer_field_range(f.get_internal_type()), dict(self._norms)[i])
                      for i, f in enumerate(fields) if f.get_internal_type().endswith("IntegerField")]
        self._text_index = [i for i, _ in self._texts]
        self._text_limit = [limit for _, limit in self._texts]
        kinds = {i: f.get_internal_type() for i, f in enumerate(fields)}
        self._bools = [i for i, kind in kinds.items() if kind == "BooleanField"]
        self._floats = [(i, n) for i, n in self._norms if kinds[i] == "FloatField"]
        self._jsons = [i for i, kind in kinds.items() if kind == "JSONField"]
        handled = {i for i, *_ in self._texts} | {i for i, *_ in self._ints} | set(self._bools) | set(self._jsons)
        if set(dict(self._norms)) - handled - {i for i, _ in self._floats}:
            raise TypeError("a RequestLog column type rows.RowBuilder does not handle")
        self.affinity_id_max = ResponseAffinity._meta.get_field("response_id").max_length
        self._affinity_group = _text_of(ResponseAffinity._meta.get_field("group_name"))

    def row(self, record) -> list:
        # This runs on the event loop for every request: values that already fit (nearly all)
        # are checked in bulk, at C speed; only a column that fails the check is normalised.
        row = list(self._values(record))
        texts = [row[i] for i in self._text_index]
        try:
            joined = "".join(texts)
        except TypeError:  # a non-text value: normalise each
            joined = "\x00"
        if not joined.isascii() or "\x00" in joined or not all(map(operator.le, map(len, texts), self._text_limit)):
            for i, limit in self._texts:
                row[i] = clean_text(row[i], limit)
        for i, low, high, norm in self._ints:
            v = row[i]
            if v.__class__ is not int or (low is not None and v < low) or (high is not None and v > high):
                row[i] = norm(v)
        for i in self._bools:
            if row[i].__class__ is not bool:
                row[i] = bool(row[i])
        for i, norm in self._floats:
            v = row[i]
            if v is not None and (v.__class__ is not float or v - v):  # v - v: NaN for nan and ±inf
                row[i] = norm(v)
        for i in self._jsons:
            row[i] = clean_json(row[i])
        for i in self._times:
            v = row[i]
            row[i] = self.timestamp(v if isinstance(v, datetime) else datetime.now(timezone.utc))
        return row

    def remap(self, fields: list[str], row: list) -> list:
        """A row journaled with other columns (an older version), as today's columns want it."""
        by_name = dict(zip(fields, row))
        out = [by_name.get(name) for name in self.log_fields]
        for i, norm in self._norms:
            out[i] = norm(out[i])
        for i in self._times:
            if not isinstance(out[i], str):
                out[i] = self.timestamp(datetime.now(timezone.utc))
        return out

    def affinities(self, record, ttl_seconds: float) -> list:
        """(response_id, deployment_id, group_name, created_at, expires_at) rows for this record."""
        if not record.deployment_id:
            return []
        ids = ([record.response_id] if record.remember_response and record.response_id else []) + list(
            record.reasoning_ids or ())
        keep = [i for i in ids if isinstance(i, str) and i and clean_text(i, self.affinity_id_max) == i]
        if not keep:
            return []
        created = record.created_at if isinstance(record.created_at, datetime) else datetime.now(timezone.utc)
        start, end = self.timestamp(created), self.timestamp(created + timedelta(seconds=ttl_seconds))
        group = self._affinity_group(record.group_name)
        return [[rid, record.deployment_id, group, start, end] for rid in keep]


@functools.cache
def builder(log_fields: tuple[str, ...]) -> RowBuilder:
    return RowBuilder(list(log_fields))
