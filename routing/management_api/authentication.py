"""Credentials for /api/: a management token or the master key as a bearer token, or the admin session.

`BearerAuthentication` takes `Authorization: Bearer <value>`:
- a management token (`gwm_…`, routing/management_api/models.py): looked up by its SHA-256; refused when
  unknown, revoked, expired, or its user is inactive. It acts as its user (their role, their history).
  `last_used_at` is written at most once a minute per token.
- GATEWAY_MASTER_KEY (compared in constant time): the bootstrap ops credential, refused once ops retired it
  (GatewaySettings.master_key_enabled, as on /v1, routing/api/authentication.py).
Anything else after `Bearer` is a 401. Without an Authorization header the admin session is tried next
(DRF's `SessionAuthentication`, which enforces CSRF on writes). No credential at all: 401 with
`WWW-Authenticate: Bearer realm="api"`.
"""

import hmac
from datetime import timedelta

from django.conf import settings
from django.utils import timezone
from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import AuthenticationFailed

from routing import selectors
from routing.management_api.models import TOKEN_PREFIX, ManagementToken, hash_token
from routing.management_api.roles import MASTER_KEY_USER

LAST_USED_EVERY = timedelta(minutes=1)


def is_master_key(raw: str) -> bool:
    master = settings.GATEWAY["MASTER_KEY"]
    return bool(master) and hmac.compare_digest(raw.encode(), master.encode())


class BearerAuthentication(BaseAuthentication):
    def authenticate(self, request):
        scheme, _, value = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
        if scheme.lower() != "bearer":
            return None
        value = value.strip()
        if is_master_key(value):
            if not selectors.master_key_enabled():
                raise AuthenticationFailed("GATEWAY_MASTER_KEY has been retired; use a management token.")
            return MASTER_KEY_USER, None
        if not value.startswith(TOKEN_PREFIX):
            raise AuthenticationFailed("Invalid token. Send a management token as 'Authorization: Bearer gwm_…'.")
        token = ManagementToken.objects.select_related("user").filter(token_hash=hash_token(value)).first()
        if token is None:
            raise AuthenticationFailed("Invalid token.")
        if not token.usable:
            raise AuthenticationFailed("This token has been revoked or has expired.")
        if not token.user.is_active:
            raise AuthenticationFailed("The token's user is inactive.")
        now = timezone.now()
        if token.last_used_at is None or now - token.last_used_at > LAST_USED_EVERY:
            ManagementToken.objects.filter(pk=token.pk).update(last_used_at=now)
        return token.user, token

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="api"'
