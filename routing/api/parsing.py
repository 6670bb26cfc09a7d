"""Reading a client request: content type, JSON object, model → group."""

import orjson

from routing import errors
from routing.config import route_table
from routing.config.snapshots import GroupSnap, KeySnap, RouteSnapshot
from routing.forwarding.upstream_request import FORWARDED_CLIENT_HEADERS
from routing.http import ApiRequest

# `curl -d` sends application/x-www-form-urlencoded by default; its body is still the
# JSON people typed, so it is accepted when it parses. Anything else non-JSON is a 415.
_ACCEPTED_TYPES = frozenset({"", "application/json", "application/x-www-form-urlencoded", "text/json"})


def json_body(request: ApiRequest) -> tuple[bytes, dict]:
    ctype = request.META.get("CONTENT_TYPE", "").split(";", 1)[0].strip().lower()
    if ctype not in _ACCEPTED_TYPES and not ctype.endswith("+json"):
        raise errors.unsupported_media_type(ctype)
    raw = request.body  # already within GATEWAY_MAX_BODY_BYTES: routing/asgi_api.py enforces it while reading
    if not raw.strip():
        raise errors.bad_body("The request body is empty; send a JSON object.")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise errors.invalid_json(str(exc)) from None
    if not isinstance(body, dict):
        raise errors.bad_body(f"The request body must be a JSON object, not {type(body).__name__}.")
    return raw, body


async def group_for(body: dict, key: KeySnap, snap: RouteSnapshot) -> GroupSnap:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise errors.bad_body("You must provide a model parameter (a string).", param="model")
    group = snap.groups.get(model)
    if group is None:
        group = (await route_table.table.refresh_if_changed()).groups.get(model)
        if group is None:
            raise errors.model_not_found(model)
    if not key.may_use(group.name):
        raise errors.model_not_allowed(model)
    return group


def forwarded_query(request: ApiRequest) -> str:
    """The client's query string minus `api-version` (the deployment decides that)."""
    query = request.META.get("QUERY_STRING", "")
    if "api-version" not in query:
        return query
    return "&".join(p for p in query.split("&") if p and not p.startswith("api-version="))


def forwarded_headers(meta: dict) -> dict[str, str]:
    """The client headers the upstream gets (routing.forwarding.upstream_request.FORWARDED_CLIENT_HEADERS)."""
    found = {}
    for name in FORWARDED_CLIENT_HEADERS:
        value = meta.get("HTTP_" + name.upper().replace("-", "_"))
        if value:
            found[name] = value
    return found
