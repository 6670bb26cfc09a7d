"""Pieces the admin modules share: secret lookups refused, big-table paging, read-only admins, display helpers."""

import json

from django.contrib import admin
from django.core.paginator import Paginator
from django.db import connections
from django.utils.functional import cached_property
from django.utils.html import format_html


class SecretLookupsRefused:
    """See Django's UserAdmin (#20078): we don't want to allow any lookups involving secrets. Without this,
    ?api_key_encrypted__startswith=… on a changelist would let anyone with view access read ciphertext (or a key
    hash) back one character at a time from the result counts."""

    secret_fields = ("api_key_encrypted", "key_hash")

    def lookup_allowed(self, lookup, value, request=None):
        if any(part in self.secret_fields for part in lookup.split("__")):
            return False
        return super().lookup_allowed(lookup, value, request)


class EstimatedCountPaginator(Paginator):
    """Counting is what makes a big log slow to page, so it is bounded:
    - unfiltered, PostgreSQL, above ESTIMATE_ABOVE rows: the planner's estimate (pg_class.reltuples, kept fresh
      by autovacuum) instead of a COUNT(*) over millions of rows;
    - filtered: counted up to COUNT_CAP + 1 rows (`SELECT COUNT(*) FROM (… LIMIT n)`), so a filter matching most
      of the log costs a bounded index walk; `capped` tells the page to say "more than COUNT_CAP".
    Other databases and small tables get the exact count."""

    ESTIMATE_ABOVE = 100_000
    COUNT_CAP = 10_000
    capped = False

    @cached_property
    def count(self) -> int:
        query = getattr(self.object_list, "query", None)
        if query is None:
            return super().count
        connection = connections[self.object_list.db]
        if connection.vendor == "postgresql" and not query.where:
            with connection.cursor() as cursor:
                cursor.execute("SELECT reltuples::bigint FROM pg_class WHERE oid = to_regclass(%s)",
                               [self.object_list.model._meta.db_table])
                row = cursor.fetchone()
            if row and row[0] > self.ESTIMATE_ABOVE:
                return row[0]
        if query.where:
            counted = self.object_list.order_by()[: self.COUNT_CAP + 1].count()  # unordered: stops at the cap
            self.capped = counted > self.COUNT_CAP
            return counted
        return super().count


class ReadOnlyAdmin(admin.ModelAdmin):
    """For tables the gateway writes and nobody edits; they grow big, so no full counts."""

    show_full_result_count = False
    paginator = EstimatedCountPaginator

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


def pretty_json(value) -> str:
    return format_html("<pre>{}</pre>", json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True))


def humane_ms(ms: float | None) -> str:
    """5004.969088 → "5.00 s"; 0.42 → "0.42 ms"; 83012 → "1 min 23 s"."""
    if ms is None:
        return "—"
    if ms < 10:
        return f"{ms:.2f} ms"
    if ms < 1000:
        return f"{ms:.0f} ms"
    if ms < 60_000:
        return f"{ms / 1000:.2f} s"
    minutes, seconds = divmod(round(ms / 1000), 60)
    return f"{minutes} min {seconds} s"


def badge(text: str, tone: str, title: str = "") -> str:
    """A coloured label (tones: ok, warn, bad, off; styled by console/console.css)."""
    return format_html('<span class="gw-badge gw-{}" title="{}">{}</span>', tone, title, text)


def page(model_admin, view):
    """A console page inside `model_admin`'s URLs: `view(model_admin, request, **kwargs)`, behind the admin's
    login and staff check (permissions are checked by the view itself)."""

    def bound(request, *args, **kwargs):
        return view(model_admin, request, *args, **kwargs)

    bound.__name__ = view.__name__
    return model_admin.admin_site.admin_view(bound)


def page_context(model_admin, request, title: str, obj=None, **extra) -> dict:
    """What the admin's base templates need (site header, breadcrumbs, user links), plus `extra`."""
    opts = model_admin.model._meta
    return {**model_admin.admin_site.each_context(request), "title": title, "opts": opts, "original": obj,
            "app_label": opts.app_label, **extra}


def clipped(text: str, title: str = "") -> str:
    """Text cut to its column's width with an ellipsis (console.css), shown whole on hover."""
    return format_html('<span class="gw-clip" title="{}">{}</span>', title or text, text)
