"""DRF permissions for /api/ (roles: routing/management_api/roles.py)."""

from rest_framework.permissions import SAFE_METHODS, BasePermission

from routing.management_api import roles


class ReadAuditorWriteOps(BasePermission):
    """Reads for ops and auditors, writes for ops. Anonymous requests get DRF's 401, others a 403 that says why."""

    message = "Your account has neither the ops nor the auditor role."

    def has_permission(self, request, view) -> bool:
        role = roles.role_of(request.user)
        if role is None:
            return False
        if request.method in SAFE_METHODS or role == roles.OPS:
            return True
        self.message = "This needs the ops role; auditors may only read."
        return False


class BuiltinReadOnly(BasePermission):
    """A built-in policy preset is shipped data, read-only as in the admin: copy it (POST …/copy/) or extend it."""

    message = "Built-in preset: read-only. Copy it (POST /api/policies/{id}/copy/) or create a policy that extends it."

    def has_object_permission(self, request, view, obj) -> bool:
        return request.method in SAFE_METHODS or not getattr(obj, "builtin", False)
