"""Gateway-key authentication against the in-memory key table.

Accepts `Authorization: Bearer <key>` and `api-key: <key>` (what Azure clients send).
The master key (GATEWAY_MASTER_KEY) is compared in constant time; client keys are
looked up by their SHA-256 (a dict access: comparing digests of 192-bit random keys
leaks nothing useful). A key created a moment ago, not yet in the table, is found
with one indexed query.
"""

import hmac
from datetime import datetime, timezone

from django.conf import settings

from routing import dbthread, errors, keys, selectors
from routing.config.snapshots import KeySnap, RouteSnapshot

MASTER = KeySnap(id=None, name="master", allowed_groups=None)


def presented_key(meta: dict) -> str:
    auth = meta.get("HTTP_AUTHORIZATION", "")
    if auth:
        scheme, _, value = auth.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    return meta.get("HTTP_API_KEY", "").strip()


async def authenticate(meta: dict, snap: RouteSnapshot) -> KeySnap:
    raw = presented_key(meta)
    if not raw:
        raise errors.unauthorized(
            "You didn't provide an API key. Send it as 'Authorization: Bearer <key>' or in an 'api-key' header."
        )
    master = settings.GATEWAY["MASTER_KEY"]
    if master and hmac.compare_digest(raw.encode(), master.encode()):
        return MASTER
    key = snap.keys_by_hash.get(keys.hash_key(raw))
    if key is None and raw.startswith(keys.KEY_PREFIX):
        key = await dbthread.run(selectors.api_key_by_secret, raw)
    if key is None:
        raise errors.unauthorized("Incorrect API key provided.")
    if key.expires_at is not None and key.expires_at <= datetime.now(timezone.utc):
        raise errors.unauthorized("This API key has expired.")
    return key
