"""Admin for the request log's quarantine: rows the database refused, read-only.

Registered from routing/admin.py (`from routing.audit import admin as audit_admin`). A row
lands here only after the batch writer split its batch down to that single row and the
database, reachable and taking other rows, still refused it (routing/audit/store.py).
"""

from django.contrib import admin

from routing.admin.common import ReadOnlyAdmin
from routing.models import RequestLogQuarantine


@admin.register(RequestLogQuarantine)
class RequestLogQuarantineAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "request_id", "short_reason")
    search_fields = ("=request_id",)
    search_help_text = "Exact request id."
    date_hierarchy = "created_at"
    fields = ("created_at", "request_id", "reason", "raw")
    readonly_fields = fields
    list_per_page = 50

    @admin.display(description="Reason")
    def short_reason(self, obj: RequestLogQuarantine) -> str:
        return obj.reason if len(obj.reason) <= 120 else obj.reason[:119] + "…"
