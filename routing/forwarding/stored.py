"""Follow-up calls on a stored response: GET/DELETE /v1/responses/{id},
POST /v1/responses/{id}/cancel, GET /v1/responses/{id}/input_items.

They carry no model, so the deployment comes from the response id (affinity). Ids are
never rewritten; in the upstream URL the id is one encoded path segment. An id owned by a
group the key may not use gets exactly the answer of an id nobody knows.

A response whose deployment is gone is reported as such only to a key that may use the
group it was created in. An id the gateway never saw (created directly upstream, say) is
sent to the only deployment there is when the key may use every group; a limited key gets
the gateway's own 404, exactly what it gets for another group's response.
"""

from urllib.parse import quote

from django.http import HttpResponseBase

from routing import errors
from routing.config.snapshots import DeploymentSnap, KeySnap, RouteSnapshot
from routing.forwarding import affinity
from routing.forwarding.call import Call
from routing.forwarding.model_call import call_deployment
from routing.forwarding.upstream_request import Target


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
