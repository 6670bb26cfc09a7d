"""Client keys and gateway settings.

A client key is generated server-side and shown once: the add (or regenerate) response itself renders the
key page, with `Cache-Control: no-store`. The key is never put in a cookie, the session or the messages
framework; the database keeps its prefix and sha256 only. GATEWAY_MASTER_KEY is the bootstrap key; the
gateway settings row retires it once real keys exist.
"""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.http import HttpResponseRedirect
from django.urls import path, reverse
from django.utils import timezone
from simple_history.admin import SimpleHistoryAdmin

from routing import selectors, services
from routing.admin.common import SecretLookupsRefused, badge, page
from routing.console import key_pages
from routing.models import ApiKey, GatewaySettings


@admin.register(ApiKey)
class ApiKeyAdmin(SecretLookupsRefused, SimpleHistoryAdmin):
    list_display = ("name", "prefix", "groups", "state", "expires_at", "rpm", "tpm", "max_parallel", "created_at")
    list_filter = ("is_active",)
    search_fields = ("name", "=prefix")
    filter_horizontal = ("allowed_groups",)
    actions = ("revoke",)
    history_list_display = ("is_active", "expires_at")

    def get_urls(self):
        return [path("<path:object_id>/regenerate/", page(self, key_pages.regenerate),
                     name="routing_apikey_regenerate")] + super().get_urls()

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("allowed_groups")

    def get_fieldsets(self, request, obj=None):
        editable = ("name", "allowed_groups", ("is_active", "expires_at"), ("rpm", "tpm", "max_parallel"))
        if obj is None:
            return ((None, {"fields": editable,
                            "description": "The key is generated when you save and shown once, on the next page."}),)
        return ((None, {"fields": ("prefix", "state", "created_at", *editable)}),)

    def get_readonly_fields(self, request, obj=None):
        return ("prefix", "state", "created_at") if obj else ()

    def changelist_view(self, request, extra_context=None):
        context = {**(extra_context or {}), "master_key": key_pages.master_key_status()}
        return super().changelist_view(request, context)

    @admin.display(description="Allowed groups")
    def groups(self, obj: ApiKey) -> str:
        return ", ".join(g.name for g in obj.allowed_groups.all()) or "(all)"

    @admin.display(description="State")
    def state(self, obj: ApiKey) -> str:
        if not obj.is_active:
            return badge("revoked", "off")
        if obj.expires_at is not None and obj.expires_at <= timezone.now():
            return badge("expired", "bad", f"expired {obj.expires_at:%Y-%m-%d %H:%M:%S}")
        if obj.expires_at is not None:
            return badge("active", "ok", f"expires {obj.expires_at:%Y-%m-%d %H:%M:%S}")
        return badge("active", "ok", "never expires")

    def save_model(self, request, obj, form, change):
        obj._history_user = request.user
        if change:
            return super().save_model(request, obj, form, change)
        obj._issued_key = services.api_key_issue(key=obj)  # in memory only, for response_add

    def response_add(self, request, obj, post_url_continue=None):
        issued = getattr(obj, "_issued_key", None)
        if issued is None:
            return super().response_add(request, obj, post_url_continue)
        return key_pages.one_time_page(self, request, obj, issued, regenerated=False)

    @admin.action(description="Revoke selected keys", permissions=("change",))
    def revoke(self, request, queryset):
        count = services.api_keys_revoke(key_ids=list(queryset.values_list("pk", flat=True)))
        self.message_user(request, f"Revoked {count} key(s).", messages.SUCCESS)


class GatewaySettingsForm(forms.ModelForm):
    class Meta:
        model = GatewaySettings
        fields = ("master_key_enabled",)

    def clean(self):
        data = super().clean()
        if data.get("master_key_enabled") is False and not selectors.usable_api_keys_exist():
            raise ValidationError("Create an active API key before retiring the master key.")
        return data


@admin.register(GatewaySettings)
class GatewaySettingsAdmin(SimpleHistoryAdmin):
    """One row (pk=1): the list page opens it directly."""

    form = GatewaySettingsForm
    fields = ("master_key_enabled", "master_key_configured", "updated_at")
    readonly_fields = ("master_key_configured", "updated_at")

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def changelist_view(self, request, extra_context=None):
        row = selectors.gateway_settings()
        if row._state.adding:
            row.save()
        return HttpResponseRedirect(reverse("admin:routing_gatewaysettings_change", args=[row.pk]))

    @admin.display(description="GATEWAY_MASTER_KEY")
    def master_key_configured(self, obj) -> str:
        return key_pages.master_key_status()["summary"]

    def save_model(self, request, obj, form, change):
        obj._history_user = request.user
        services.master_key_set_enabled(enabled=obj.master_key_enabled)
