"""Follow-up calls on a stored response: GET/DELETE /v1/responses/{id},
POST /v1/responses/{id}/cancel, GET /v1/responses/{id}/input_items.

They carry no model, so the deployment comes from the response id (affinity). Ids are
never rewritten; in the upstream URL the id is one encoded path segment. An id owned by a
group the key may not use gets exactly the answer of an id nobody knows.

A response whose deployment is gone is reported as such only to a key that may use the
group it was created in. An id the gateway never saw (created directly upstream, say) is
sent to the only deployment there is when the key may use every group; a limited key gets
the gateway's own 404, exactly what it gets for another group's response.

Bridged responses (ids `resp_gw_…`, answered through the Chat bridge) are the gateway's own:
GET, DELETE and input_items are answered from its store (forwarding/bridge_store.py), with the
same group check and the same 404 for an id it does not hold.
"""

from urllib.parse import parse_qsl, quote

import orjson
from django.http import HttpResponse, HttpResponseBase

from routing import dbthread, errors, services
from routing.config.snapshots import DeploymentSnap, KeySnap, RouteSnapshot
from routing.forwarding import affinity, bridge_store
from routing.forwarding.call import Call, json_response
from routing.forwarding.model_call import call_deployment
from routing.forwarding.upstream_request import Target
from routing.models import BridgedResponse


async def deployment_for(response_id: str, key: KeySnap, snap: RouteSnapshot) -> DeploymentSnap:
    """The deployment holding the response. Whether the key may use its group is checked by the
    caller (api.permissions.GroupAccess), with the same answer as for an unknown id."""
    owner = await affinity.lookup(response_id)
    if owner is not None:
        dep = snap.deployments.get(owner.deployment_id)
        if dep is not None:
            return dep
        if key.may_use(owner.group):
            raise errors.GatewayError(
                404, f"Response '{response_id}' was created by a deployment that is no longer available.",
                code="response_deployment_unavailable", param="response_id")
        raise errors.response_not_found(response_id)
    if key.allowed_groups is None and len(snap.deployments) == 1:
        return next(iter(snap.deployments.values()))
    raise errors.response_not_found(response_id)


async def response_call(call: Call, dep: DeploymentSnap, snap: RouteSnapshot, *, response_id: str, method: str,
                        suffix: str, query: str, stream: bool, forwarded: dict[str, str]) -> HttpResponseBase:
    call.record.group_name = dep.group_name
    call.record.stream = stream
    target = Target(method, f"responses/{quote(response_id, safe='')}{suffix}", call.record.endpoint, query,
                    None, None, stream)
    return await call_deployment(call, dep, snap, target, forwarded)


# --- responses the gateway answered through the Chat bridge: served from its own store ------------------------

async def bridged_response(response_id: str) -> BridgedResponse:
    """The stored row, or the 404 of an unknown id (also for an expired one; another group's is
    refused by the caller's permission check, api.permissions.GroupAccess, with the same 404)."""
    row = await bridge_store.load(response_id)
    if row is None:
        raise errors.response_not_found(response_id)
    return row


async def bridged_call(call: Call, row: BridgedResponse, *, method: str, suffix: str, query: str,
                       stream: bool) -> HttpResponse:
    rec = call.record
    rec.group_name, rec.response_id = row.group_name, row.response_id
    if suffix == "/input_items":
        content = orjson.dumps(_page(orjson.loads(row.input_items), query))
    elif suffix:  # /cancel
        raise errors.GatewayError(400, "Only background responses can be cancelled, and this one is complete.",
                                  code="invalid_request", param="response_id")
    elif method == "DELETE":
        await dbthread.run(services.bridged_response_delete, response_id=row.response_id)
        content = orjson.dumps({"id": row.response_id, "object": "response.deleted", "deleted": True})
    elif stream:
        raise errors.GatewayError(400, "A stored response can be streamed again only when it was created in the "
                                  "background; request it without stream=true.", code="unsupported_parameter",
                                  param="stream")
    else:
        content = row.response.encode()
    rec.bytes_out = len(content)
    call.done(200)
    return call.headers(json_response(content, 200))


def _page(items: list, query: str) -> dict:
    """One page of input items, as OpenAI lists them: `order` desc (default) or asc, `after` an id, `limit` 1-100."""
    params = dict(parse_qsl(query, keep_blank_values=True))
    order = params.get("order", "desc")
    if order not in ("asc", "desc"):
        raise errors.bad_body("order must be 'asc' or 'desc'.", param="order")
    try:
        limit = int(params.get("limit", 20))
    except ValueError:
        limit = 0
    if not 1 <= limit <= 100:
        raise errors.bad_body("limit must be an integer between 1 and 100.", param="limit")
    ordered = items[::-1] if order == "desc" else items
    after = params.get("after")
    if after:
        ids = [i.get("id") for i in ordered]
        ordered = ordered[ids.index(after) + 1:] if after in ids else []
    page = ordered[:limit]
    return {"object": "list", "data": page, "first_id": page[0].get("id") if page else None,
            "last_id": page[-1].get("id") if page else None, "has_more": len(ordered) > limit}
