"""Reading a client request: the JSON body, the model's group, the query and headers to
forward, a response id from the path. Each refusal is an OpenAI-shaped GatewayError."""

from urllib.parse import parse_qsl, urlencode

import orjson
from django.conf import settings

from routing import errors
from routing.config import route_table
from routing.config.snapshots import GroupSnap, RouteSnapshot
from routing.forwarding.upstream_request import FORWARDED_CLIENT_HEADERS

# `curl -d` sends application/x-www-form-urlencoded by default; its body is still the
# JSON people typed, so it is accepted when it parses. Anything else non-JSON is a 415.
_ACCEPTED_TYPES = frozenset({"", "application/json", "application/x-www-form-urlencoded", "text/json"})
MAX_RESPONSE_ID = 256


def json_body(request) -> tuple[bytes, dict]:
    ctype = request.META.get("CONTENT_TYPE", "").split(";", 1)[0].strip().lower()
    if ctype not in _ACCEPTED_TYPES and not ctype.endswith("+json"):
        raise errors.unsupported_media_type(ctype)
    # read(), not .body: .body enforces DATA_UPLOAD_MAX_MEMORY_SIZE, the admin's form limit; the API's
    # own limit is GATEWAY_MAX_BODY_BYTES, which the API handler already enforced while reading.
    raw = request.read()
    limit = settings.GATEWAY["MAX_BODY_BYTES"]
    if len(raw) > limit:  # under any other handler the view may run under
        raise errors.too_large(limit)
    if not raw.strip():
        raise errors.bad_body("The request body is empty; send a JSON object.")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise errors.invalid_json(str(exc)) from None
    if not isinstance(body, dict):
        raise errors.bad_body(f"The request body must be a JSON object, not {type(body).__name__}.")
    return raw, body


def model_name(body: dict) -> str:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise errors.bad_body("You must provide a model parameter (a string).", param="model")
    return model


async def group_for(model: str, snap: RouteSnapshot) -> GroupSnap:
    """The group serving `model`; a model created a moment ago is found by a version check."""
    group = snap.groups.get(model)
    if group is None:
        group = (await route_table.table.refresh_if_changed()).groups.get(model)
        if group is None:
            raise errors.model_not_found(model)
    return group


def forwarded_query(query: str) -> str:
    """The client's query string minus `api-version`, however it is spelled or encoded: the
    deployment's own API version always wins."""
    if not query:
        return ""
    pairs = parse_qsl(query, keep_blank_values=True)
    kept = [(k, v) for k, v in pairs if k.strip().lower() != "api-version"]
    return query if len(kept) == len(pairs) else urlencode(kept)


def query_flag(query: str, name: str) -> bool:
    return any(k == name and v.lower() in ("true", "1") for k, v in parse_qsl(query, keep_blank_values=True))


def forwarded_headers(meta: dict) -> dict[str, str]:
    """The client headers the upstream gets, each within its size limit (400 past it)."""
    found = {}
    for name, limit in FORWARDED_CLIENT_HEADERS.items():
        value = meta.get("HTTP_" + name.upper().replace("-", "_"))
        if value:
            if len(value) > limit:
                raise errors.GatewayError(400, f"The {name} header is longer than {limit} characters.",
                                          code="header_too_long", param=name)
            found[name] = value
    return found


def response_id(value: str) -> str:
    """A response id from the path: printable, bounded, and not a dot segment (it becomes one
    percent-encoded upstream path segment; `.` and `..` would be normalised away by URL parsers)."""
    if len(value) > MAX_RESPONSE_ID or not value.isprintable() or value in (".", ".."):
        raise errors.GatewayError(400, "Invalid response id.", code="invalid_response_id", param="response_id")
    return value
