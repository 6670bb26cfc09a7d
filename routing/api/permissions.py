"""Who may use what: DRF permission classes over the client key (`request.user`, a KeySnap)."""

from dataclasses import dataclass

from rest_framework.permissions import BasePermission

from routing.config.snapshots import KeySnap
from routing.errors import GatewayError


class HasGatewayKey(BasePermission):
    """A gateway key must be presented (a missing one is a 401, a wrong one fails authentication)."""

    def has_permission(self, request, view) -> bool:
        return isinstance(request.user, KeySnap)


@dataclass(frozen=True, slots=True)
class InGroup:
    """Something that belongs to a model group: the group itself, or a stored response."""

    group: str
    hidden: GatewayError  # what a key that may not use the group is told: the same as for something unknown


class GroupAccess(BasePermission):
    """The key may use the object's group. A group the key may not use answers exactly like an
    unknown one (404), so a limited key cannot learn which other groups or responses exist."""

    def has_object_permission(self, request, view, obj: InGroup) -> bool:
        if not request.user.may_use(obj.group):
            raise obj.hidden
        return True
