"""The ops console. The classes are declarative; writes go through `routing.services`.

Secrets:
- Upstream keys are write-only (see `forms.DeploymentForm`). Pages show only the masked
  hint "••••abcd", never the encrypted column. The column is not listed, searched or
  filtered, and URL lookups on it are refused (`SecretLookupsRefused`).
- A client key is generated server-side and shown once, in the success message after the
  add. The database keeps only its prefix and sha256.

RequestLog is an audit trail and is view-only for everyone, superusers included. Rows are
written by the gateway, never edited, and not deleted from here either: retention belongs to
a scheduled job. Deleting millions of rows through the admin's confirmation page would not
work anyway. Its filters never run `SELECT DISTINCT` over the log table. Name choices come
from the small route tables, and any value can still be passed in the URL (?group_name=x).
"""

import json

from django.contrib import admin, messages
from django.core.paginator import Paginator
from django.db import connections
from django.db.models import Count, Q
from django.utils.functional import cached_property
from django.utils.html import format_html

from routing import services
from routing.audit import admin as audit_admin  # noqa: F401  (registers the request-log quarantine)
from routing.forms import DeploymentForm, FallbackFormSet, ParamPolicyForm, PolicyRuleForm
from routing.models import (
    ApiKey,
    Deployment,
    GroupFallback,
    ModelGroup,
    ParamPolicy,
    PolicyRule,
    RequestLog,
    ResponseAffinity,
)
from routing.resilience.health_report import deployment_health

admin.site.site_header = "LLM Gateway"
admin.site.site_title = "LLM Gateway admin"
admin.site.index_title = "Routes, keys and request logs"

KEY_FIELDS = ("new_api_key", "clear_api_key", "stored_key")


class SecretLookupsRefused:
    """See Django's UserAdmin (#20078): we don't want to allow any lookups involving secrets. Without this,
    ?api_key_encrypted__startswith=… on a changelist would let anyone with view access read ciphertext (or a key
    hash) back one character at a time from the result counts."""

    secret_fields = ("api_key_encrypted", "key_hash")

    def lookup_allowed(self, lookup, value, request=None):
        if any(part in self.secret_fields for part in lookup.split("__")):
            return False
        return super().lookup_allowed(lookup, value, request)


class DeploymentKeyFields:
    """The write-only key inputs plus the masked hint; shared by the standalone admin and the group inline."""

    form = DeploymentForm
    readonly_fields = ("stored_key",)

    @admin.display(description="Stored key")
    def stored_key(self, obj: Deployment) -> str:
        try:
            return obj.api_key_hint
        except ValueError:  # encrypted under a GATEWAY_ENCRYPTION_KEY this process doesn't have
            return "(cannot decrypt: enter the key again)"

    @staticmethod
    def save_deployment_form(form) -> None:
        services.deployment_save(deployment=form.instance, new_api_key=form.cleaned_data.get("new_api_key", ""),
                                 clear_api_key=form.cleaned_data.get("clear_api_key", False))


# --- routes ----------------------------------------------------------------------------------------------------

class DeploymentInline(DeploymentKeyFields, admin.StackedInline):
    model = Deployment
    extra = 0
    show_change_link = True
    fields = (("name", "provider", "enabled"), ("api_base", "upstream_model", "api_version"), KEY_FIELDS,
              ("weight", "priority", "rpm", "tpm"), "policy")


class FallbackInline(admin.TabularInline):
    model = GroupFallback
    fk_name = "group"
    formset = FallbackFormSet
    fields = ("position", "fallback")
    extra = 0
    verbose_name = "fallback group"
    verbose_name_plural = "Fallback groups (tried in order when every deployment of this group is unavailable)"


@admin.register(ModelGroup)
class ModelGroupAdmin(SecretLookupsRefused, admin.ModelAdmin):
    list_display = ("name", "strategy", "deployment_counts", "enabled", "updated_at")
    list_filter = ("enabled", "strategy")
    search_fields = ("name",)
    fieldsets = (
        (None, {"fields": ("name", "description", "strategy", "enabled")}),
        ("Retries and cooldown", {"fields": (("max_attempts", "retry_on_status"),
                                             ("cooldown_failures", "cooldown_window", "cooldown_seconds"))}),
    )
    inlines = (DeploymentInline, FallbackInline)

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(
            deployments_total=Count("deployments"),
            deployments_enabled=Count("deployments", filter=Q(deployments__enabled=True)),
        )

    @admin.display(description="Deployments (enabled/total)", ordering="deployments_total")
    def deployment_counts(self, obj: ModelGroup) -> str:
        return f"{obj.deployments_enabled}/{obj.deployments_total}"

    def save_formset(self, request, form, formset, change):
        if formset.model is not Deployment:
            return super().save_formset(request, form, formset, change)
        formset.save(commit=False)  # sorts forms into new/changed/deleted without writing
        for deployment in formset.deleted_objects:
            deployment.delete()
        saved = {id(obj) for obj in formset.new_objects + [obj for obj, _ in formset.changed_objects]}
        for inline_form in formset.forms:
            if id(inline_form.instance) in saved:
                DeploymentKeyFields.save_deployment_form(inline_form)


@admin.register(Deployment)
class DeploymentAdmin(SecretLookupsRefused, DeploymentKeyFields, admin.ModelAdmin):
    list_display = ("name", "group", "provider", "api_base", "upstream_model", "api_version", "stored_key",
                    "weight", "priority", "enabled", "health")
    list_filter = ("provider", "enabled", "group")
    list_select_related = ("group",)
    search_fields = ("name", "upstream_model", "api_base")
    readonly_fields = ("stored_key", "created_at", "updated_at", "health_detail")
    fieldsets = (
        (None, {"fields": ("group", "name", "provider", "enabled", "health_detail")}),
        ("Upstream", {"fields": ("api_base", "upstream_model", "api_version", *KEY_FIELDS)}),
        ("Balancing and limits", {"fields": (("weight", "priority"), ("rpm", "tpm"))}),
        ("Request policy", {"fields": ("policy", ("speaks_responses", "speaks_chat", "speaks_compact"),
                                       ("chat_reasoning_effort", "chat_stream_usage"), "collect_stream_usage"),
                            "description": "New Azure deployments without a policy get the azure-responses preset. "
                            "What the upstream speaks: blank takes the provider's default; /v1/responses on a "
                            "deployment without the Responses API goes through the Chat bridge."}),
        ("Timeouts (seconds)", {"classes": ("collapse",), "fields": (("connect_timeout", "first_byte_timeout"),
                                                                     ("idle_timeout", "total_timeout"))}),
        ("Timestamps", {"classes": ("collapse",), "fields": ("created_at", "updated_at")}),
    )

    def save_model(self, request, obj, form, change):
        self.save_deployment_form(form)

    @admin.display(description="Health")
    def health(self, obj: Deployment) -> str:
        return deployment_health(obj.pk)["state"]

    @admin.display(description="Health")
    def health_detail(self, obj: Deployment) -> str:
        if obj.pk is None:
            return "—"
        h = deployment_health(obj.pk)
        return format_html("{}<br>last error: {} {}<br>cooled down until: {}", h["state"], h["last_error"] or "—",
                           h["last_error_at"] or "", h["cooled_until"] or "—")


# --- policies --------------------------------------------------------------------------------------------------

class PolicyRuleInline(admin.TabularInline):
    model = PolicyRule
    form = PolicyRuleForm
    extra = 1
    ordering = ("position", "id")


@admin.register(ParamPolicy)
class ParamPolicyAdmin(SecretLookupsRefused, admin.ModelAdmin):
    form = ParamPolicyForm
    list_display = ("name", "extends", "builtin", "rule_count", "used_by", "updated_at")
    list_filter = ("builtin",)
    list_select_related = ("extends",)
    search_fields = ("name", "description")
    readonly_fields = ("builtin", "used_by", "updated_at")
    inlines = (PolicyRuleInline,)
    BUILTIN_NOTE = ("Built-in preset: you can edit it, but every deployment using it (or a policy extending it) "
                    "changes too. Prefer a new policy that extends this one.")

    def get_fieldsets(self, request, obj=None):
        fields = ("name", "description", "extends", "builtin", "used_by", "updated_at")
        return ((None, {"fields": fields, "description": self.BUILTIN_NOTE if obj and obj.builtin else None}),)

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(
            n_rules=Count("rules", distinct=True), n_deployments=Count("deployments", distinct=True))

    @admin.display(description="Rules", ordering="n_rules")
    def rule_count(self, obj: ParamPolicy) -> int:
        return obj.n_rules

    @admin.display(description="Used by", ordering="n_deployments")
    def used_by(self, obj: ParamPolicy) -> str:
        count = getattr(obj, "n_deployments", None)
        count = obj.deployments.count() if count is None else count
        return f"{count} deployment{'' if count == 1 else 's'}"


# --- client keys -----------------------------------------------------------------------------------------------

@admin.register(ApiKey)
class ApiKeyAdmin(SecretLookupsRefused, admin.ModelAdmin):
    list_display = ("name", "prefix", "groups", "is_active", "expires_at", "rpm", "tpm", "max_parallel", "created_at")
    list_filter = ("is_active",)
    search_fields = ("name", "=prefix")
    filter_horizontal = ("allowed_groups",)
    actions = ("revoke",)

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("allowed_groups")

    def get_fieldsets(self, request, obj=None):
        editable = ("name", "allowed_groups", ("is_active", "expires_at"), ("rpm", "tpm", "max_parallel"))
        if obj is None:
            return ((None, {"fields": editable,
                            "description": "The key is generated when you save and shown once, on the next page."}),)
        return ((None, {"fields": ("prefix", "key_hash", "created_at", *editable)}),)

    def get_readonly_fields(self, request, obj=None):
        return ("prefix", "key_hash", "created_at") if obj else ()

    @admin.display(description="Allowed groups")
    def groups(self, obj: ApiKey) -> str:
        return ", ".join(g.name for g in obj.allowed_groups.all()) or "(all)"

    def save_model(self, request, obj, form, change):
        if change:
            return super().save_model(request, obj, form, change)
        full = services.api_key_issue(key=obj)
        self.message_user(request, format_html("Copy the key for “{}” now. It is not stored and will not be shown "
                                               "again: <code>{}</code>", obj.name, full), messages.SUCCESS)

    @admin.action(description="Revoke selected keys", permissions=("change",))
    def revoke(self, request, queryset):
        count = services.api_keys_revoke(key_ids=list(queryset.values_list("pk", flat=True)))
        self.message_user(request, f"Revoked {count} key(s).", messages.SUCCESS)


# --- audit (read-only) -----------------------------------------------------------------------------------------

def choice_filter(field: str, title: str, choices) -> type[admin.SimpleListFilter]:
    """A filter on a plain column whose choices come from `choices()`, not from the (big) filtered table.
    A value from the URL that is not a current choice (a deleted group) is offered too, so it still applies."""

    def lookups(self, request, model_admin):
        listed = list(choices())
        current = self.value()
        return listed + [(current, current)] if current is not None and current not in dict(listed) else listed

    def queryset(self, request, queryset):
        return queryset.filter(**{field: self.value()}) if self.value() is not None else queryset

    return type(f"{field}_filter", (admin.SimpleListFilter,),
                {"title": title, "parameter_name": field, "lookups": lookups, "queryset": queryset})


def names(model, extra: tuple[str, ...] = ()):
    return lambda: [(n, n) for n in sorted({*extra, *model.objects.values_list("name", flat=True)})][:300]


ENDPOINTS = ("responses", "chat", "compact", "responses.input_tokens", "responses.get", "responses.delete",
             "responses.cancel", "responses.input_items", "models", "unknown")


class StatusFilter(admin.SimpleListFilter):
    """2xx/4xx/5xx classes, or an exact code from the URL (?status=429)."""

    title = "status"
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return [("2xx", "2xx success"), ("4xx", "4xx client error"), ("429", "429 rate limited"),
                ("5xx", "5xx server/upstream error")]

    def queryset(self, request, queryset):
        value = self.value() or ""
        if len(value) == 3 and value.endswith("xx") and value[0].isdigit():
            low = int(value[0]) * 100
            return queryset.filter(status__gte=low, status__lt=low + 100)
        return queryset.filter(status=int(value)) if value.isdigit() else queryset


class EstimatedCountPaginator(Paginator):
    """An unfiltered COUNT(*) over millions of log rows takes seconds on PostgreSQL. Above ESTIMATE_ABOVE rows,
    the unfiltered changelist uses the planner's estimate (pg_class.reltuples, kept fresh by autovacuum). Filtered
    lists, other databases and small tables get the exact count."""

    ESTIMATE_ABOVE = 100_000

    @cached_property
    def count(self) -> int:
        query = getattr(self.object_list, "query", None)
        connection = connections[self.object_list.db] if query is not None else None
        if connection is not None and connection.vendor == "postgresql" and not query.where:
            with connection.cursor() as cursor:
                cursor.execute("SELECT reltuples::bigint FROM pg_class WHERE oid = to_regclass(%s)",
                               [self.object_list.model._meta.db_table])
                row = cursor.fetchone()
            if row and row[0] > self.ESTIMATE_ABOVE:
                return row[0]
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


@admin.register(RequestLog)
class RequestLogAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "request_id", "key_name", "group_name", "deployment_name", "endpoint", "stream",
                    "status", "upstream_status", "latency_ms", "ttfb_ms", "total_tokens", "client_disconnected")
    list_filter = (
        choice_filter("group_name", "group", names(ModelGroup)),
        choice_filter("deployment_name", "deployment", names(Deployment)),
        StatusFilter,
        choice_filter("key_name", "key", names(ApiKey, extra=("master",))),
        "stream", "client_disconnected",
        choice_filter("endpoint", "endpoint", lambda: [(e, e) for e in ENDPOINTS]),
    )
    search_fields = ("=request_id", "=response_id")  # exact: uses the indexes, unlike icontains
    search_help_text = "Exact request id or response id."
    date_hierarchy = "created_at"
    show_facets = admin.ShowFacets.NEVER  # facet counts are one COUNT per choice over the whole log
    list_per_page = 50
    fieldsets = (
        ("Request", {"fields": ("request_id", "created_at", ("method", "endpoint", "stream"), "path",
                                ("key_name", "key_id"))}),
        ("Routing", {"fields": ("group_name", ("deployment_name", "deployment_id", "provider"), "attempts_json")}),
        ("Result", {"fields": (("status", "upstream_status", "client_disconnected"), ("error_type", "error_message"),
                               ("response_id", "upstream_request_id"), "bytes_out")}),
        ("Timing (ms)", {"fields": (("latency_ms", "ttfb_ms", "overhead_ms"),)}),
        ("Tokens", {"fields": (("input_tokens", "output_tokens", "total_tokens"),
                               ("cached_tokens", "reasoning_tokens"))}),
        ("Policy changes", {"fields": ("policy_changes_json",)}),
    )
    readonly_fields = ("attempts_json", "policy_changes_json")

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
