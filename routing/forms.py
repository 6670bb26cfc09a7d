"""Admin forms: input checks only. Saving goes through `routing.services`.

- `DeploymentForm`: the upstream key is WRITE-ONLY. The encrypted column is not a form field.
  `new_api_key` is a password input that never echoes a value back. Blank keeps the stored
  key, and the "clear" box removes it. The services turn these into a `Deployment.api_key`
  assignment (the property setter encrypts).
- `PolicyRuleForm`: one policy rule per inline row, compiled with the gateway's own
  `compile_rule`, so a rule the admin accepts is one the router can load.
"""

from django import forms
from django.core.exceptions import ValidationError

from routing import services
from routing.models import Deployment, GroupFallback, ParamPolicy, PolicyRule
from routing.policy import compile_rule
from routing.validators import validate_upstream_key


class HttpsURLField(forms.CharField):
    """Upstreams are HTTPS unless ops type the scheme; single-label hosts (`http://vllm:8000/v1`)
    are allowed (the model field's validator checks the rest)."""

    def to_python(self, value):
        value = super().to_python(value).strip()
        if value and "://" not in value:
            value = "https://" + value
        return value


class ProviderDefaultSelect(forms.NullBooleanSelect):
    """A capability (routing/capabilities.py): blank means the provider's default, not "unknown"."""

    def __init__(self, attrs=None):
        super().__init__(attrs)
        self.choices = [("unknown", "Provider default"), ("true", "Yes"), ("false", "No")]


CAPABILITY_FIELDS = ("speaks_responses", "speaks_chat", "speaks_compact", "chat_reasoning_effort", "chat_stream_usage")


class DeploymentForm(forms.ModelForm):
    new_api_key = forms.CharField(
        label="Upstream API key", required=False, validators=[validate_upstream_key],
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Leave blank to keep the current key",
    )
    clear_api_key = forms.BooleanField(
        label="Clear key", required=False, help_text="Remove the stored key (for keyless compatible servers).",
    )

    class Meta:
        model = Deployment
        fields = "__all__"  # api_key_encrypted is editable=False, so it is never a form field
        field_classes = {"api_base": HttpsURLField}
        labels = {"api_base": "API base URL", "api_version": "API version", "rpm": "RPM limit", "tpm": "TPM limit"}
        widgets = {name: ProviderDefaultSelect for name in CAPABILITY_FIELDS}

    def clean(self):
        data = super().clean()
        if data.get("new_api_key") and data.get("clear_api_key"):
            self.add_error("clear_api_key", "Enter a new key or clear the stored one, not both.")
        current = {name: data.get(name) if name in self.fields else getattr(self.instance, name)
                   for name in ("provider", "api_base", "upstream_model")}
        for field, message in services.deployment_missing_fields(**current).items():
            if field not in self.errors:  # an invalid URL is already reported; "required" would be noise
                self.add_error(field if field in self.fields else None, message)
        return data


class ParamPolicyForm(forms.ModelForm):
    class Meta:
        model = ParamPolicy
        fields = "__all__"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "extends" in self.fields and self.instance.pk:
            self.fields["extends"].queryset = ParamPolicy.objects.exclude(pk=self.instance.pk)


class PolicyRuleForm(forms.ModelForm):
    RULE_FIELDS = ("action", "path", "value", "target", "endpoint", "stream", "message")

    class Meta:
        model = PolicyRule
        fields = ("position", "action", "path", "value", "target", "endpoint", "stream", "message", "enabled")
        widgets = {
            "path": forms.TextInput(attrs={"size": 28}),
            "target": forms.TextInput(attrs={"size": 20}),
            "value": forms.TextInput(attrs={"size": 16}),
            "message": forms.TextInput(attrs={"size": 20}),
        }

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        fields = {name: data.get(name) for name in self.RULE_FIELDS}
        fields.update({key: fields[key] or "" for key in ("path", "target", "message")})
        try:
            PolicyRule(**fields).clean()
        except ValidationError:
            return data  # the model's own field errors are reported by the ModelForm; don't say it twice
        try:
            compile_rule(fields.pop("action"), fields.pop("path"), **fields)
        except ValueError as exc:
            raise ValidationError(str(exc), code="invalid_rule") from exc
        return data


class FallbackFormSet(forms.BaseInlineFormSet):
    """Fallback groups must not lead back to the group (directly or through other groups)."""

    def clean(self):
        super().clean()
        group = self.instance
        if group.pk is None:
            return
        chosen = [f.cleaned_data["fallback"] for f in self.forms
                  if f.cleaned_data.get("fallback") and not f.cleaned_data.get("DELETE")]
        edges = fallback_edges(exclude_group_id=group.pk)
        edges[group.pk] = {g.pk for g in chosen}
        if fallbacks_lead_back(group_id=group.pk, edges=edges):
            raise ValidationError("These fallbacks would lead back to this group (a loop).")


def fallback_edges(*, exclude_group_id: int | None = None) -> dict[int, set[int]]:
    """{group id: ids of its fallback groups}, from the database."""
    edges: dict[int, set[int]] = {}
    for group_id, fallback_id in GroupFallback.objects.exclude(group_id=exclude_group_id).values_list(
            "group_id", "fallback_id"):
        edges.setdefault(group_id, set()).add(fallback_id)
    return edges


def fallbacks_lead_back(*, group_id: int, edges: dict[int, set[int]]) -> bool:
    """True if following fallbacks from `group_id` reaches it again (directly or through other groups)."""
    stack, seen = list(edges.get(group_id, ())), set()
    while stack:
        node = stack.pop()
        if node == group_id:
            return True
        if node not in seen:
            seen.add(node)
            stack.extend(edges.get(node, ()))
    return False
