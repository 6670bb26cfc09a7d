"""Model groups, deployments and group fallbacks.

Deployments' upstream keys are write-only: `api_key` sets one (blank or absent keeps the stored key),
`clear_api_key` removes it; reads say `api_key_set` and, for ops, `api_key_hint` (the last four characters,
as the admin shows them); the key itself is never returned. Saved through `services.deployment_save`, which
also gives a new Azure deployment without a policy the azure-responses preset.
"""

from django import forms
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from routing import services
from routing.forms import DeploymentForm, fallbacks_lead_back
from routing.management_api import roles
from routing.management_api.serializers.common import FormValidated
from routing.management_api.serializers.fields import StrictBooleanField, StrictCharField
from routing.models import Deployment, GroupFallback, ModelGroup
from routing.validators import validate_upstream_key

GROUP_FIELDS = ("name", "description", "strategy", "enabled", "max_attempts", "retry_on_status", "cooldown_failures",
                "cooldown_window", "cooldown_seconds")


class ModelGroupSerializer(FormValidated):
    """A model group: the public model name clients send, how its deployments are picked, retries and cooldown."""

    form_class = forms.modelform_factory(ModelGroup, fields=GROUP_FIELDS)

    class Meta:
        model = ModelGroup
        fields = ("id", *GROUP_FIELDS, "created_at", "updated_at")

    def create(self, validated_data):
        return self.form.save()

    def update(self, instance, validated_data):
        return self.form.save()


class DeploymentSerializer(FormValidated):
    """One upstream of a group. The upstream key is write-only (`api_key`, `clear_api_key`): never returned."""

    form_class = DeploymentForm
    renamed = {"new_api_key": "api_key"}

    # Checked by the form (DeploymentForm's field adds https:// when no scheme is given, then validates).
    api_base = StrictCharField(max_length=500, required=False, allow_blank=True,
                                     help_text=Deployment._meta.get_field("api_base").help_text + " (https:// is "
                                     "added when no scheme is given).")
    api_key = StrictCharField(
        write_only=True, required=False, allow_blank=True, max_length=4096, validators=[validate_upstream_key],
        style={"input_type": "password"}, help_text="Write-only upstream key, encrypted at rest; blank or absent "
        "keeps the stored key.")
    clear_api_key = StrictBooleanField(write_only=True, required=False, default=False,
                                             help_text="Remove the stored upstream key.")
    api_key_set = serializers.SerializerMethodField(help_text="Whether an upstream key is stored.")
    api_key_hint = serializers.SerializerMethodField(
        help_text="The stored key's last four characters (ops only; null for auditors or when none is stored).")
    capabilities = serializers.SerializerMethodField(
        help_text="What the upstream speaks, provider defaults filled in: responses, chat, compact, ...")

    class Meta:
        model = Deployment
        fields = ("id", "group", "name", "provider", "api_base", "upstream_model", "api_version", "api_key",
                  "clear_api_key", "api_key_set", "api_key_hint", "weight", "priority", "rpm", "tpm",
                  "connect_timeout", "first_byte_timeout", "idle_timeout", "total_timeout", "policy",
                  "speaks_responses", "speaks_chat", "speaks_compact", "chat_reasoning_effort", "chat_stream_usage",
                  "collect_stream_usage", "capabilities", "enabled", "created_at", "updated_at")

    def get_api_key_set(self, obj: Deployment) -> bool:
        return bool(obj.api_key_encrypted)

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_api_key_hint(self, obj: Deployment) -> str | None:
        request = self.context.get("request")
        if not obj.api_key_encrypted or request is None or roles.role_of(request.user) != roles.OPS:
            return None
        return obj.api_key_hint

    def get_capabilities(self, obj: Deployment) -> list[str]:
        return sorted(obj.capabilities)

    def _save(self):
        data = self.form.cleaned_data
        return services.deployment_save(deployment=self.form.instance, new_api_key=data.get("new_api_key", ""),
                                        clear_api_key=data.get("clear_api_key", False))

    def create(self, validated_data):
        return self._save()

    def update(self, instance, validated_data):
        return self._save()


class GroupFallbackSerializer(FormValidated):
    """`group` falls back to `fallback` (lowest position first) when none of its deployments is usable."""

    form_class = forms.modelform_factory(GroupFallback, fields=("group", "fallback", "position"))

    class Meta:
        model = GroupFallback
        fields = ("id", "group", "fallback", "position")

    def validate(self, attrs):
        attrs = super().validate(attrs)
        link = self.form.instance
        edges: dict[int, set[int]] = {}
        for other in GroupFallback.objects.exclude(pk=link.pk).values_list("group_id", "fallback_id"):
            edges.setdefault(other[0], set()).add(other[1])
        edges.setdefault(link.group_id, set()).add(link.fallback_id)
        if fallbacks_lead_back(group_id=link.group_id, edges=edges):
            raise serializers.ValidationError({"fallback": ["This fallback would lead back to the group (a loop)."]})
        return attrs

    def create(self, validated_data):
        return self.form.save()

    def update(self, instance, validated_data):
        return self.form.save()
