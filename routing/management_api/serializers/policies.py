"""Param policies with their rules, nested: a policy's `rules` list is written whole (at most MAX_RULES).

On a write, a rule with the `id` of one of the policy's rules updates it, a rule without `id` is added,
and the policy's rules left out are deleted; `rules` absent (PATCH) leaves them as they are. A rule's
`position` defaults to its index in the list. The policy is validated by the admin's `ParamPolicyForm`
(no loops through `extends`), each rule by `PolicyRuleForm` (compiled with the engine's `compile_rule`,
so a rule the API accepts is one the router can load). Built-in presets are read-only
(permissions.BuiltinReadOnly); `POST /api/policies/{id}/copy/` makes an editable copy (services.policy_copy).
"""

from django import forms
from django.db import transaction
from rest_framework import serializers

from routing.forms import ParamPolicyForm, PolicyRuleForm
from routing.management_api import history
from routing.management_api.serializers.common import FormValidated
from routing.management_api.serializers.fields import StrictIntegerField, StrictModelSerializer
from routing.management_api.validation import run_form
from routing.models import ParamPolicy, PolicyRule

MAX_RULES = 200
RULE_FIELDS = ("position", "action", "path", "value", "target", "endpoint", "stream", "message", "enabled")


class PolicyRuleSerializer(StrictModelSerializer):
    """One rule: drop, set, default, rename, reject or allow_only a (dotted) path, limited to an endpoint and stream
    mode if wanted."""

    id = StrictIntegerField(required=False, min_value=1, help_text="An existing rule of this policy to update; "
                                  "absent: a new rule.")
    position = StrictIntegerField(required=False, min_value=0, max_value=2147483647,
                                        help_text="Order within the rule's phase; default: its index in the list.")

    class Meta:
        model = PolicyRule
        fields = ("id", *RULE_FIELDS)


class ParamPolicySerializer(FormValidated):
    """A named list of rules rewriting request bodies before they are forwarded; `extends` applies a base first."""

    form_class = forms.modelform_factory(ParamPolicy, form=ParamPolicyForm, fields=("name", "description", "extends"))
    rules = PolicyRuleSerializer(many=True, required=False, max_length=MAX_RULES,
                                 help_text=f"The policy's own rules (at most {MAX_RULES}); base policies' rules "
                                 "apply first.")

    class Meta:
        model = ParamPolicy
        fields = ("id", "name", "description", "extends", "builtin", "rules", "updated_at")
        read_only_fields = ("builtin",)

    def form_data(self, attrs: dict) -> dict:
        return {k: v for k, v in attrs.items() if k != "rules"}

    def validate(self, attrs):
        attrs = super().validate(attrs)
        if "rules" not in attrs:
            return attrs
        policy = self.form.instance
        existing = {rule.pk: rule for rule in policy.rules.all()} if policy.pk else {}
        self.rule_forms, errors = [], []
        for index, rule in enumerate(attrs["rules"]):
            rule_id = rule.get("id")
            if rule_id is not None and rule_id not in existing:
                errors.append({"id": [f"Rule {rule_id} is not one of this policy's rules."]})
                continue
            instance = existing.get(rule_id) or PolicyRule()
            data = {"position": index, **{k: v for k, v in rule.items() if k != "id"}}
            try:
                self.rule_forms.append(run_form(PolicyRuleForm, instance=instance, data=data))
                errors.append({})
            except serializers.ValidationError as exc:
                errors.append(exc.detail)
        if any(errors):
            raise serializers.ValidationError({"rules": errors})
        self.removed_rules = [rule for pk, rule in existing.items()
                              if pk not in {r.get("id") for r in attrs["rules"]}]
        return attrs

    @transaction.atomic
    def _save(self):
        policy = self.form.save()
        request = self.context["request"]
        for rule in getattr(self, "removed_rules", ()):
            history.attribute(rule, request)
            rule.delete()
        for form in getattr(self, "rule_forms", ()):
            form.instance.policy = policy
            history.attribute(form.instance, request)
            form.save()
        return policy

    def create(self, validated_data):
        return self._save()

    def update(self, instance, validated_data):
        return self._save()
