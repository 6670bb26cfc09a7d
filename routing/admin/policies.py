"""Param policies: rules as inline rows, the effective rule list, built-in presets read-only ("copy to edit"),
the preview, and history that restores a policy with its rules (pages in routing.console.policy_pages)."""

from django.contrib import admin
from django.db.models import Count
from django.template.loader import render_to_string
from django.urls import path
from simple_history.admin import SimpleHistoryAdmin

from routing import selectors
from routing.admin.common import SecretLookupsRefused, page
from routing.console import policy_pages
from routing.forms import ParamPolicyForm, PolicyRuleForm
from routing.models import ParamPolicy, PolicyRule


class PolicyRuleInline(admin.TabularInline):
    model = PolicyRule
    form = PolicyRuleForm
    extra = 1
    ordering = ("position", "id")

    # A built-in preset is shipped data: shown, never edited in place (copy it, or extend it).
    def has_add_permission(self, request, obj=None):
        return not (obj and obj.builtin) and super().has_add_permission(request, obj)

    def has_change_permission(self, request, obj=None):
        return not (obj and obj.builtin) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return not (obj and obj.builtin) and super().has_delete_permission(request, obj)


@admin.register(ParamPolicy)
class ParamPolicyAdmin(SecretLookupsRefused, SimpleHistoryAdmin):
    form = ParamPolicyForm
    list_display = ("name", "extends", "builtin", "rule_count", "used_by", "updated_at")
    list_filter = ("builtin",)
    list_select_related = ("extends",)
    search_fields = ("name", "description")
    readonly_fields = ("builtin", "used_by", "updated_at", "effective_rules")
    inlines = (PolicyRuleInline,)
    object_history_template = "admin/routing/parampolicy/object_history.html"
    BUILTIN_NOTE = ("Built-in preset: read-only, because every deployment using it (or a policy extending it) would "
                    "change too. Use “Copy to edit”, or create a policy that extends this one.")

    def get_urls(self):
        return [
            path("preview/", page(self, policy_pages.preview), name="routing_parampolicy_preview"),
            path("<path:object_id>/copy/", page(self, policy_pages.copy), name="routing_parampolicy_copy"),
            path("<path:object_id>/restore/", page(self, policy_pages.restore), name="routing_parampolicy_restore"),
        ] + super().get_urls()

    def get_fieldsets(self, request, obj=None):
        fields = ("name", "description", "extends", "builtin", "used_by", "updated_at")
        sets = [(None, {"fields": fields, "description": self.BUILTIN_NOTE if obj and obj.builtin else None})]
        if obj is not None:
            sets.append(("Effective rules, in the order they apply", {"fields": ("effective_rules",)}))
        return sets

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(
            n_rules=Count("rules", distinct=True), n_deployments=Count("deployments", distinct=True))

    def has_change_permission(self, request, obj=None):
        return not (obj and obj.builtin) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return not (obj and obj.builtin) and super().has_delete_permission(request, obj)

    def history_view(self, request, object_id, extra_context=None):
        context = {**(extra_context or {}), "rule_history": policy_pages.rule_history(object_id)}
        return super().history_view(request, object_id, context)

    def save_model(self, request, obj, form, change):
        obj._history_user = request.user
        super().save_model(request, obj, form, change)

    @admin.display(description="Rules", ordering="n_rules")
    def rule_count(self, obj: ParamPolicy) -> int:
        return obj.n_rules

    @admin.display(description="Used by", ordering="n_deployments")
    def used_by(self, obj: ParamPolicy) -> str:
        count = getattr(obj, "n_deployments", None)
        count = obj.deployments.count() if count is None else count
        return f"{count} deployment{'' if count == 1 else 's'}"

    @admin.display(description="Effective rules")
    def effective_rules(self, obj: ParamPolicy) -> str:
        if obj.pk is None:
            return "—"
        return render_to_string("console/effective_rules.html",
                                {"rows": selectors.effective_rules(policy=obj), "policy": obj})
