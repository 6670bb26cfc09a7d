"""Management API tokens: listed with their state, revoked in bulk. Created with
`manage.py create_management_token USER` (the token is printed once; the database keeps prefix and sha256)."""

from django.contrib import admin, messages
from django.utils import timezone

from routing import services
from routing.admin.common import SecretLookupsRefused, badge
from routing.management_api.models import TOKEN_PREFIX, ManagementToken


@admin.register(ManagementToken)
class ManagementTokenAdmin(SecretLookupsRefused, admin.ModelAdmin):
    secret_fields = ("token_hash",)
    list_display = ("name", "user", "shown_prefix", "state", "created_at", "last_used_at", "expires_at")
    list_filter = ("revoked_at",)
    list_select_related = ("user",)
    search_fields = ("name", "=prefix", "user__username")
    fields = ("name", "user", "shown_prefix", "state", "created_at", "last_used_at", "expires_at", "revoked_at")
    readonly_fields = ("user", "shown_prefix", "state", "created_at", "last_used_at", "revoked_at")
    actions = ("revoke",)

    def has_add_permission(self, request):
        return False  # manage.py create_management_token USER: the token is printed once, never stored

    @admin.display(description="Token")
    def shown_prefix(self, obj: ManagementToken) -> str:
        return f"{TOKEN_PREFIX}{obj.prefix}_…"

    @admin.display(description="State")
    def state(self, obj: ManagementToken) -> str:
        if obj.revoked_at is not None:
            return badge("revoked", "off", f"revoked {obj.revoked_at:%Y-%m-%d %H:%M:%S}")
        if obj.expires_at is not None and obj.expires_at <= timezone.now():
            return badge("expired", "bad")
        return badge("active", "ok")

    @admin.action(description="Revoke selected tokens", permissions=("change",))
    def revoke(self, request, queryset):
        count = services.management_tokens_revoke(token_ids=list(queryset.values_list("pk", flat=True)))
        self.message_user(request, f"Revoked {count} token(s).", messages.SUCCESS)
