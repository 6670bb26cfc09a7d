"""Model groups and deployments: lists that fit a laptop screen, health as a coloured state, bulk enable and
disable, clone, the Test action and the rejected-parameter fixes (pages in routing.console.deployment_pages)."""

from django.contrib import admin, messages
from django.db.models import Count, Q
from django.urls import path
from django.utils.html import format_html
from simple_history.admin import SimpleHistoryAdmin

from routing import selectors, services
from routing.admin.common import SecretLookupsRefused, badge, clipped, page
from routing.console import deployment_pages
from routing.forms import DeploymentForm, FallbackFormSet
from routing.models import Deployment, GroupFallback, ModelGroup
from routing.resilience.health_report import deployment_health

KEY_FIELDS = ("new_api_key", "clear_api_key", "stored_key")
HEALTH_TONES = {"healthy": "ok", "cooling": "bad", "auth_failed": "bad", "probing": "warn"}


def health_badge(health: dict) -> str:
    state = health.get("state") or "unknown"
    reason = health.get("last_error") or ""
    when = health.get("last_error_at") or ""
    until = health.get("cooled_until")
    title = "; ".join(x for x in (reason, f"at {when}" if when else "", f"cooled until {until}" if until else "") if x)
    return badge(state.replace("_", " "), HEALTH_TONES.get(state, "warn"), title)


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
class ModelGroupAdmin(SecretLookupsRefused, SimpleHistoryAdmin):
    list_display = ("name", "strategy", "deployment_counts", "max_attempts", "enabled", "updated_at")
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
class DeploymentAdmin(SecretLookupsRefused, DeploymentKeyFields, SimpleHistoryAdmin):
    list_display = ("label", "group_label", "provider", "upstream", "weight", "priority", "enabled", "health",
                    "stored_key")
    list_display_links = ("label",)
    list_filter = ("provider", "enabled", "group")
    list_select_related = ("group",)
    search_fields = ("name", "upstream_model", "api_base")
    readonly_fields = ("stored_key", "created_at", "updated_at", "health_state", "health_detail")
    actions = ("enable_selected", "disable_selected", "clone_selected", "test_selected")
    fieldsets = (
        (None, {"fields": ("group", "name", "provider", "enabled", "health_state", "health_detail")}),
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

    def get_urls(self):
        return [
            path("<path:object_id>/test/", page(self, deployment_pages.test), name="routing_deployment_test"),
            path("<path:object_id>/clone/", page(self, deployment_pages.clone), name="routing_deployment_clone"),
            path("<path:object_id>/drop-param/", page(self, deployment_pages.drop_param),
                 name="routing_deployment_drop_param"),
        ] + super().get_urls()

    def save_model(self, request, obj, form, change):
        obj._history_user = request.user
        self.save_deployment_form(form)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        context = dict(extra_context or {})
        if object_id and str(object_id).isdigit():
            context["rejected_params"] = selectors.rejected_params(deployment_id=int(object_id))
        return super().change_view(request, object_id, form_url, context)

    @admin.display(description="Name", ordering="name")
    def label(self, obj: Deployment) -> str:
        return clipped(obj.name)

    @admin.display(description="Group", ordering="group__name")
    def group_label(self, obj: Deployment) -> str:
        return clipped(obj.group.name)

    @admin.display(description="Upstream")
    def upstream(self, obj: Deployment) -> str:
        base = obj.api_base.split("://", 1)[-1].split("/", 1)[0] if obj.api_base else "(default)"
        model = obj.upstream_model or "(client's model)"
        version = f" · {obj.api_version}" if obj.api_version else ""
        return format_html('<span class="gw-upstream" title="{}">{}<br><small>{}{}</small></span>',
                           obj.api_base, base, model, version)

    @admin.display(description="Health")
    def health(self, obj: Deployment) -> str:
        return health_badge(deployment_health(obj.pk))

    @admin.display(description="State")
    def health_state(self, obj: Deployment) -> str:
        return health_badge(deployment_health(obj.pk)) if obj.pk is not None else "—"

    @admin.display(description="Health")
    def health_detail(self, obj: Deployment) -> str:
        """Plain lines (state, last error, cooled down until): tests/integration/resilience_support.py reads them."""
        if obj.pk is None:
            return "—"
        h = deployment_health(obj.pk)
        return format_html("{}<br>last error: {} {}<br>cooled down until: {}", h["state"], h["last_error"] or "—",
                           h["last_error_at"] or "", h["cooled_until"] or "—")

    @admin.action(description="Enable selected deployments", permissions=("change",))
    def enable_selected(self, request, queryset):
        count = services.deployments_set_enabled(deployment_ids=list(queryset.values_list("pk", flat=True)),
                                                 enabled=True)
        self.message_user(request, f"Enabled {count} deployment(s).", messages.SUCCESS)

    @admin.action(description="Disable selected deployments", permissions=("change",))
    def disable_selected(self, request, queryset):
        count = services.deployments_set_enabled(deployment_ids=list(queryset.values_list("pk", flat=True)),
                                                 enabled=False)
        self.message_user(request, f"Disabled {count} deployment(s).", messages.SUCCESS)

    @admin.action(description="Clone selected deployments (the copies start disabled)", permissions=("add",))
    def clone_selected(self, request, queryset):
        clones = [services.deployment_clone(deployment=dep) for dep in queryset[:20]]
        self.message_user(request, f"Created {len(clones)} disabled copy(ies): "
                          + ", ".join(c.name for c in clones), messages.SUCCESS)

    @admin.action(description="Test selected deployments (one minimal request each)", permissions=("change",))
    def test_selected(self, request, queryset):
        return deployment_pages.test_many(self, request, list(queryset.select_related("group")[:10]))
