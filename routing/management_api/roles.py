"""Who may do what on /api/: two roles, from Django groups (created by migration 0014).

- `ops`: read and write routes, policies, fallbacks, client keys, settings; read the log.
  Superusers and the bootstrap GATEWAY_MASTER_KEY count as ops.
- `auditor`: read only (routes without secrets, keys' metadata, the request log).
A user in both groups is ops; a user in neither may not use the API (403).
"""

OPS = "ops"
AUDITOR = "auditor"
ROLES = (OPS, AUDITOR)


class MasterKeyUser:
    """`request.user` when GATEWAY_MASTER_KEY was presented: ops, but no Django user (history names nobody)."""

    is_authenticated = True
    is_active = True
    is_superuser = False
    is_staff = False
    pk = id = None
    username = "master-key"

    def __str__(self) -> str:
        return "GATEWAY_MASTER_KEY"


MASTER_KEY_USER = MasterKeyUser()


def role_of(user) -> str | None:
    """ops, auditor, or None (anonymous, inactive, or a user in neither group)."""
    if user is MASTER_KEY_USER:
        return OPS
    if user is None or not getattr(user, "is_authenticated", False) or not user.is_active:
        return None
    if user.is_superuser:
        return OPS
    names = _group_names(user)
    return OPS if OPS in names else AUDITOR if AUDITOR in names else None


def _group_names(user) -> set[str]:
    cached = getattr(user, "_management_roles", None)  # one query per request, however often we ask
    if cached is None:
        cached = user._management_roles = set(user.groups.filter(name__in=ROLES).values_list("name", flat=True))
    return cached


def django_user(user):
    """The Django user behind `request.user` (None for the master key): who history entries name."""
    return None if user is MASTER_KEY_USER or not getattr(user, "is_authenticated", False) else user
