"""Follow-up calls on a stored response: GET/DELETE /v1/responses/{id},
POST /v1/responses/{id}/cancel, GET /v1/responses/{id}/input_items.

They carry no model, so the deployment comes from the response id (affinity). Ids are
never rewritten. If the deployment that created the response is gone or disabled, the
client gets a clear 404 saying so instead of another deployment's "not found". An id
the gateway never saw is sent to the key's only deployment when there is exactly one.
"""

from routing import errors
from routing.config.snapshots import DeploymentSnap, KeySnap, RouteSnapshot
from routing.forwarding import affinity
from routing.forwarding.call import Call
from routing.forwarding.model_call import call_deployment
from routing.forwarding.upstream_request import Target


async def deployment_for(response_id: str, key: KeySnap, snap: RouteSnapshot) -> DeploymentSnap:
    dep_id = await affinity.lookup(response_id)
    if dep_id is not None:
        dep = snap.deployments.get(dep_id)
        if dep is None or not key.may_use(dep.group_name):
            raise errors.GatewayError(
                404, f"Response '{response_id}' was created by a deployment that is no longer available.",
                code="response_deployment_unavailable", param="response_id")
        return dep
    usable = [d for g in snap.groups.values() if key.may_use(g.name) for d in g.deployments]
    if len(usable) == 1:
        return usable[0]
    raise errors.GatewayError(404, f"Response with id '{response_id}' not found.", code="response_not_found",
                              param="response_id")


async def response_call(call: Call, key: KeySnap, snap: RouteSnapshot, *, response_id: str, method: str,
                        suffix: str, query: str, forwarded, raw: bytes | None):
    dep = await deployment_for(response_id, key, snap)
    call.record.group_name = dep.group_name
    stream = method == "GET" and not suffix and "stream=true" in query
    call.record.stream = stream
    target = Target(method, f"responses/{response_id}{suffix}", call.record.endpoint, query, raw, None, stream)
    return await call_deployment(call, dep, snap, target, forwarded)
