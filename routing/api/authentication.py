"""Gateway-key authentication: a DRF authentication class over the in-memory key table.

Accepts `Authorization: Bearer <key>` and `api-key: <key>` (what Azure clients send).
The master key (GATEWAY_MASTER_KEY) is compared in constant time, and refused once ops
have retired it in the admin (the snapshot says so); client keys are
looked up by their SHA-256 in the route snapshot (a dict access: comparing digests of
192-bit random keys leaks nothing useful). No database query per request.

A key the snapshot does not know makes the view check the shared route version once
(`prepare()`, before DRF's synchronous authentication runs), so a key created a moment
ago works on its first request. Keys still unknown after that check are remembered as
unknown until the routes change, so repeating a bad key costs nothing, and a flood of
new bad keys costs at most the route table's rate-limited version checks.
"""

import hmac
from collections import OrderedDict
from datetime import datetime, timezone

from django.conf import settings
from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import AuthenticationFailed

from routing import keys
from routing.config import route_table
from routing.config.snapshots import KeySnap, RouteSnapshot

MASTER = KeySnap(id=None, name="master", allowed_groups=None)
_UNKNOWN_LIMIT = 10_000
_unknown: "OrderedDict[str, int]" = OrderedDict()  # key hash -> route version it was unknown at


def presented_key(meta: dict) -> str:
    auth = meta.get("HTTP_AUTHORIZATION", "")
    if auth:
        scheme, _, value = auth.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    return meta.get("HTTP_API_KEY", "").strip()


def _is_master(raw: str) -> bool:
    master = settings.GATEWAY["MASTER_KEY"]
    return bool(master) and hmac.compare_digest(raw.encode(), master.encode())


async def prepare(meta: dict) -> RouteSnapshot:
    """The snapshot to authenticate against: the current one, or, for a gateway key it does not
    know yet (and not known to be bad at this route version), one checked against the database."""
    snap = await route_table.table.get()
    raw = presented_key(meta)
    if not raw.startswith(keys.KEY_PREFIX) or _is_master(raw):
        return snap
    digest = keys.hash_key(raw)
    if digest in snap.keys_by_hash or _unknown.get(digest) == snap.version:
        return snap
    snap = await route_table.table.refresh_if_changed()
    if digest not in snap.keys_by_hash:
        _unknown[digest] = snap.version
        _unknown.move_to_end(digest)
        if len(_unknown) > _UNKNOWN_LIMIT:
            _unknown.popitem(last=False)
    return snap


def authenticate_key(meta: dict, snap: RouteSnapshot) -> KeySnap | None:
    """The key presented, None when none was; AuthenticationFailed for a wrong or expired one."""
    raw = presented_key(meta)
    if not raw:
        return None
    if _is_master(raw):
        if not snap.master_key_enabled:
            raise AuthenticationFailed("This key has been retired; use a client key.", code="invalid_api_key")
        return MASTER
    key = snap.keys_by_hash.get(keys.hash_key(raw))
    if key is None:
        raise AuthenticationFailed("Incorrect API key provided.", code="invalid_api_key")
    if key.expires_at is not None and key.expires_at <= datetime.now(timezone.utc):
        raise AuthenticationFailed("This API key has expired.", code="invalid_api_key")
    return key


class GatewayKeyAuthentication(BaseAuthentication):
    """`request.user` is the client's KeySnap. The snapshot comes from the view (`request.routes`)."""

    def authenticate(self, request):
        key = authenticate_key(request.META, request.routes)
        return None if key is None else (key, None)

    def authenticate_header(self, request) -> str:
        return "Bearer"
