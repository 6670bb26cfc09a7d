"""The request log for auditors (read-only for everyone) and the affinity table.

List columns fit a laptop screen; timestamps have seconds, durations read like durations. Filters: time range,
outcome, has error, status, group, deployment, key, endpoint. Search: one term, matched exactly against the
request id, response id, key, group and deployment names (indexed), and as a substring of the error text
(a trigram index on PostgreSQL). Export: the filtered list as CSV (routing.console.log_pages). Retention is
`manage.py prune_logs`, not deletion from here.
"""

from django.contrib import admin
from django.db.models import Q
from django.http import HttpResponseBadRequest
from django.urls import path
from django.utils.html import format_html

from routing.admin.common import ReadOnlyAdmin, badge, clipped, humane_ms, page, pretty_json
from routing.admin.log_filters import (
    MAX_PARAM_CHARS,
    HasErrorFilter,
    StatusFilter,
    TimeRangeFilter,
    choice_filter,
    names,
)
from routing.console import log_pages
from routing.models import ApiKey, Deployment, ModelGroup, Outcome, RequestLog, ResponseAffinity

ENDPOINTS = ("responses", "chat", "compact", "responses.input_tokens", "responses.get", "responses.delete",
             "responses.cancel", "responses.input_items", "models", "unknown")
OUTCOME_TONES = {"completed": "ok", "client_disconnected": "warn", "rejected": "warn"}
MIN_TEXT_SEARCH = 3  # shorter terms match ids and names only (a trigram index needs 3 characters)


@admin.register(RequestLog)
class RequestLogAdmin(ReadOnlyAdmin):
    list_display = ("when", "status_badge", "outcome_badge", "key", "route", "call", "timing", "tokens", "changes")
    list_display_links = ("when",)
    sortable_by = ("when", "status_badge", "timing")
    list_filter = (
        TimeRangeFilter,
        choice_filter("outcome", "outcome", lambda: Outcome.choices),
        HasErrorFilter,
        StatusFilter,
        choice_filter("group_name", "group", names(ModelGroup)),
        choice_filter("deployment_name", "deployment", names(Deployment)),
        choice_filter("key_name", "key", names(ApiKey, extra=("master", "admin-test"))),
        choice_filter("endpoint", "endpoint", lambda: [(e, e) for e in ENDPOINTS]),
        "stream",
    )
    search_fields = ("request_id",)  # shows the search box; the search itself is get_search_results
    search_help_text = ("Request or response id, key, group or deployment name (exact), or error text "
                        f"(at least {MIN_TEXT_SEARCH} characters).")
    show_facets = admin.ShowFacets.NEVER  # facet counts are one COUNT per choice over the whole log
    list_per_page = 50
    fieldsets = (
        ("Request", {"fields": ("request_id", "created_at", ("method", "endpoint", "stream"), "path",
                                ("key_name", "key_id"))}),
        ("Routing", {"fields": ("group_name", "served_group", ("deployment_name", "deployment_id", "provider"),
                                "attempts_json")}),
        ("Result", {"fields": (("status", "upstream_status", "outcome"), ("error_type", "rejected_param"),
                               "error_message", ("response_id", "upstream_request_id"),
                               ("bytes_out", "client_disconnected"))}),
        ("Timing", {"fields": (("latency", "ttfb", "overhead"),)}),
        ("Tokens", {"fields": (("input_tokens", "output_tokens", "total_tokens"),
                               ("cached_tokens", "reasoning_tokens"))}),
        ("Policy changes", {"fields": ("policy_changes_json",)}),
    )
    readonly_fields = ("attempts_json", "policy_changes_json", "latency", "ttfb", "overhead")

    def get_urls(self):
        return [
            path("export.csv", page(self, log_pages.export_csv), name="routing_requestlog_export"),
            path("dashboard/", page(self, log_pages.dashboard), name="routing_requestlog_dashboard"),
        ] + super().get_urls()

    def changelist_view(self, request, extra_context=None):
        if any("\x00" in v or len(v) > 2 * MAX_PARAM_CHARS for vs in request.GET.lists() for v in vs[1]):
            return HttpResponseBadRequest("Bad query parameter.")
        return super().changelist_view(request, extra_context)

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        if len(term) > MAX_PARAM_CHARS:
            return queryset.none(), False
        match = (Q(request_id=term) | Q(response_id=term) | Q(key_name=term) | Q(group_name=term)
                 | Q(deployment_name=term))
        if len(term) >= MIN_TEXT_SEARCH:
            match |= Q(error_message__icontains=term)
        return queryset.filter(match), False

    @admin.display(description="Time (UTC)", ordering="created_at")
    def when(self, obj: RequestLog) -> str:
        return format_html("{}<br><small>{}</small>", obj.created_at.strftime("%H:%M:%S"),
                           obj.created_at.strftime("%Y-%m-%d"))

    @admin.display(description="Key", ordering="key_name")
    def key(self, obj: RequestLog) -> str:
        return clipped(obj.key_name or "—")

    @admin.display(description="Status", ordering="status")
    def status_badge(self, obj: RequestLog) -> str:
        tone = "ok" if obj.status < 400 else "warn" if obj.status < 500 else "bad"
        upstream = obj.upstream_status
        title = f"upstream answered {upstream}" if upstream is not None else "no upstream answer"
        return badge(str(obj.status), tone, title)

    @admin.display(description="Outcome")
    def outcome_badge(self, obj: RequestLog) -> str:
        if not obj.outcome:
            return "—"
        return badge(obj.outcome.replace("_", " "), OUTCOME_TONES.get(obj.outcome, "bad"), obj.error_type)

    @admin.display(description="Group → deployment")
    def route(self, obj: RequestLog) -> str:
        group = obj.group_name + (f" (via {obj.served_group})" if obj.served_group else "")
        return format_html("{}<br><small>{}</small>", clipped(group or "—"), clipped(obj.deployment_name or "—"))

    @admin.display(description="Call")
    def call(self, obj: RequestLog) -> str:
        return format_html("{}<br><small>{}</small>", clipped(obj.endpoint), "stream" if obj.stream else "")

    @admin.display(description="Latency", ordering="latency_ms")
    def timing(self, obj: RequestLog) -> str:
        ttfb = f"TTFB {humane_ms(obj.ttfb_ms)}" if obj.ttfb_ms is not None else ""
        return format_html("{}<br><small>{}</small>", humane_ms(obj.latency_ms), ttfb)

    @admin.display(description="Latency")
    def latency(self, obj: RequestLog) -> str:
        return humane_ms(obj.latency_ms)

    @admin.display(description="TTFB")
    def ttfb(self, obj: RequestLog) -> str:
        return humane_ms(obj.ttfb_ms)

    @admin.display(description="Gateway overhead")
    def overhead(self, obj: RequestLog) -> str:
        return humane_ms(obj.overhead_ms)

    @admin.display(description="Tokens")
    def tokens(self, obj: RequestLog) -> str:
        if obj.input_tokens is None and obj.output_tokens is None:
            return "—"
        return format_html("{} in<br><small>{} out</small>", f"{obj.input_tokens or 0:,}", f"{obj.output_tokens or 0:,}")

    @admin.display(description="Changes")
    def changes(self, obj: RequestLog) -> str:
        items = [f"{c.get('action')} {c.get('path')}" for c in obj.policy_changes or [] if isinstance(c, dict)
                 and c.get("action") != "rewrite"]
        if not items:
            return "—"
        shown = ", ".join(items[:2]) + (f" +{len(items) - 2}" if len(items) > 2 else "")
        return clipped(shown, "; ".join(items))

    @admin.display(description="Attempts")
    def attempts_json(self, obj: RequestLog) -> str:
        return pretty_json(obj.attempts)

    @admin.display(description="Changes the policy made to the body")
    def policy_changes_json(self, obj: RequestLog) -> str:
        return pretty_json(obj.policy_changes)


@admin.register(ResponseAffinity)
class ResponseAffinityAdmin(ReadOnlyAdmin):
    list_display = ("response_id", "deployment_id", "group_name", "created_at", "expires_at")
    search_fields = ("=response_id",)
