"""The routes file's gateway sections: `model_groups` (group settings and fallbacks) and `param_policies`.

    model_groups:
    - name: azure-gpt-5.5          # required; the public model name
      strategy: priority           # every other ModelGroup setting, by its field name
      max_attempts: 2
      fallbacks: [gpt-4o, {group: mini, position: 5}]   # tried in order; a bare name gets its list index
    param_policies:
    - name: strict                 # required; a built-in preset cannot be redefined here
      description: ...
      extends: azure-responses     # a policy of this section, one already in the database, or a preset
      rules:                       # each rule: its PolicyRule field names; position defaults to its index
      - {action: drop, path: reasoning.summary, endpoint: responses}
      - {action: set, path: store, value: false}

An entry is the whole truth about what it names: a key left out takes the model's default (`fallbacks`
left out: none; `rules` left out: none), and a policy's rules are replaced when they differ. Groups and
policies the file does not name are left as they are. Policies are written first (bases before the
policies extending them), then groups, then the model_list, then fallbacks (a fallback may name a group
only the model_list creates); loops in fallbacks or `extends` fail the whole file, as in the admin.
Unchanged rows are not written (no history entry, no route reload).
"""

import json
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.forms import modelform_factory

from routing.config.routes_validation import RoutesFileError, check_json, check_keys, validate_form
from routing.forms import ParamPolicyForm, PolicyRuleForm, fallback_edges, fallbacks_lead_back
from routing.models import GroupFallback, ModelGroup, ParamPolicy, PolicyRule

GROUP_SETTINGS = {"description": "str", "strategy": "str", "max_attempts": "int", "retry_on_status": "str",
                  "cooldown_failures": "int", "cooldown_window": "number", "cooldown_seconds": "number",
                  "enabled": "bool"}
GROUP_SCHEMA = {"name": "str", **GROUP_SETTINGS, "fallbacks": "list"}
POLICY_SCHEMA = {"name": "str", "description": "str", "extends": "str?", "rules": "list"}
RULE_SCHEMA = {"action": "str", "path": "str", "value": "any", "target": "str", "endpoint": "str", "stream": "str",
               "message": "str", "enabled": "bool", "position": "int"}
RULE_FIELDS = ("position", "action", "path", "value", "target", "endpoint", "stream", "message", "enabled")

GroupForm = modelform_factory(ModelGroup, fields=("name", *GROUP_SETTINGS))


def default(model, field: str):
    return model._meta.get_field(field).get_default()


@dataclass(frozen=True)
class GroupSpec:
    where: str
    name: str
    settings: tuple[tuple[str, object], ...]  # every setting: the file's value or the model default
    fallbacks: tuple[tuple[str, int], ...]    # (group name, position)


@dataclass(frozen=True)
class PolicySpec:
    where: str
    name: str
    description: str
    extends: str | None
    rules: tuple[dict, ...]  # PolicyRule field values, complete


# --- phase 1: parse (no database) -----------------------------------------------------------------------------

def _entries(doc: dict, section: str) -> list:
    entries = doc.get(section) or []
    if not isinstance(entries, list):
        raise RoutesFileError(f"'{section}' must be a list of entries, each with a name.")
    return entries


def parse_groups(doc: dict) -> list[GroupSpec]:
    specs, seen = [], {}
    for index, entry in enumerate(_entries(doc, "model_groups")):
        where = f"model_groups[{index}]"
        check_keys(where, entry, GROUP_SCHEMA, required=("name",))
        name = entry["name"].strip()
        where = f"{where} ({name})"
        if name in seen:
            raise RoutesFileError(f"{where}: the same group as model_groups[{seen[name]}].")
        seen[name] = index
        fallbacks = []
        for position, item in enumerate(entry.get("fallbacks") or []):
            if isinstance(item, dict):
                check_keys(f"{where}: fallbacks[{position}]", item, {"group": "str", "position": "int"},
                           required=("group",))
                item, position = item["group"], item.get("position", position)
            if not isinstance(item, str) or not item.strip():
                raise RoutesFileError(f"{where}: fallbacks[{position}] must be a group name.")
            fallbacks.append((item.strip(), position))
        settings = tuple((key, entry.get(key, default(ModelGroup, key))) for key in GROUP_SETTINGS)
        specs.append(GroupSpec(where=where, name=name, settings=settings, fallbacks=tuple(fallbacks)))
    return specs


def parse_policies(doc: dict) -> list[PolicySpec]:
    """The section's policies, each after the policy it extends when that one is in the section too."""
    specs: dict[str, PolicySpec] = {}
    for index, entry in enumerate(_entries(doc, "param_policies")):
        where = f"param_policies[{index}]"
        check_keys(where, entry, POLICY_SCHEMA, required=("name",))
        name = entry["name"].strip()
        where = f"{where} ({name})"
        if name in specs:
            raise RoutesFileError(f"{where}: the same policy as {specs[name].where}.")
        rules = []
        for position, rule in enumerate(entry.get("rules") or []):
            rule_where = f"{where}: rules[{position}]"
            check_keys(rule_where, rule, RULE_SCHEMA, required=("action",))
            check_json(f"{rule_where}: value", rule.get("value"))
            rules.append({field: rule.get(field, position if field == "position" else default(PolicyRule, field))
                          for field in RULE_FIELDS})
        extends = (entry.get("extends") or "").strip() or None
        specs[name] = PolicySpec(where=where, name=name, description=entry.get("description", ""),
                                 extends=extends, rules=tuple(rules))
    ordered: list[PolicySpec] = []
    for spec in specs.values():
        chain, node = [], spec
        while node is not None and node not in ordered:
            if node in chain:
                raise RoutesFileError(f"{node.where}: policies cannot extend each other in a loop.")
            chain.append(node)
            node = specs.get(node.extends)
        ordered.extend(reversed(chain))
    return ordered


# --- phase 2: write (inside the importer's transaction) --------------------------------------------------------

def apply_policies(specs: list[PolicySpec]) -> dict[str, int]:
    """Create or update each policy and its rules; returns {"created"|"updated"|"unchanged": count}."""
    counts = {"created": 0, "updated": 0, "unchanged": 0}
    for spec in specs:
        policy = ParamPolicy.objects.filter(name=spec.name).first()
        if policy is not None and policy.builtin:
            raise RoutesFileError(f"{spec.where}: '{spec.name}' is a built-in preset; refer to it by name "
                                  "(extends, or a deployment's policy) instead of redefining it.")
        base = ParamPolicy.objects.filter(name=spec.extends).first() if spec.extends else None
        if spec.extends and base is None:
            raise RoutesFileError(f"{spec.where}: extends '{spec.extends}', which is neither in param_policies "
                                  "nor in the database.")
        created = policy is None
        policy = policy or ParamPolicy()
        before = (policy.name, policy.description, policy.extends_id)
        form = ParamPolicyForm(data={"name": spec.name, "description": spec.description,
                                     "extends": base.pk if base else None, "builtin": False}, instance=policy)
        validate_form(form, spec.where)
        rules = [_rule(spec, index, values) for index, values in enumerate(spec.rules)]
        changed = created or (policy.name, policy.description, policy.extends_id) != before
        if changed:
            policy.save()
        if created or _rule_rows(policy.rules.order_by("position", "id")) != _rule_rows(rules):
            policy.rules.all().delete()
            for rule in rules:
                rule.policy = policy
                rule.save()
            changed = True
        counts["created" if created else "updated" if changed else "unchanged"] += 1
    return counts


def _rule(spec: PolicySpec, index: int, values: dict) -> PolicyRule:
    data = {**values, "value": "" if values["value"] is None else json.dumps(values["value"])}
    form = PolicyRuleForm(data=data)
    validate_form(form, f"{spec.where}: rules[{index}]")
    return form.instance


def _rule_rows(rules) -> list[tuple]:
    return [tuple(json.dumps(getattr(rule, f), sort_keys=True) for f in RULE_FIELDS) for rule in rules]


def apply_group(spec: GroupSpec) -> tuple[ModelGroup, str]:
    """Create or update one group's settings; returns (group, "created"|"updated"|"unchanged")."""
    group = ModelGroup.objects.filter(name=spec.name).first()
    return save_group(group or ModelGroup(), {"name": spec.name, **dict(spec.settings)}, spec.where)


def save_group(group: ModelGroup, data: dict, where: str) -> tuple[ModelGroup, str]:
    fields = GroupForm.base_fields
    before = [getattr(group, f) for f in fields]
    validate_form(GroupForm(data=data, instance=group), where)
    if group.pk is None:
        group.save()
        return group, "created"
    if [getattr(group, f) for f in fields] == before:
        return group, "unchanged"
    group.save()
    return group, "updated"


def apply_fallbacks(specs: list[GroupSpec]) -> None:
    """Give each listed group exactly its fallbacks; then refuse loops (as the admin does)."""
    for spec in specs:
        group = ModelGroup.objects.get(name=spec.name)
        current = list(group.fallback_links.order_by("position", "id").values_list("fallback__name", "position"))
        if current == list(spec.fallbacks):
            continue
        group.fallback_links.all().delete()
        for name, position in spec.fallbacks:
            target = ModelGroup.objects.filter(name=name).first()
            if target is None:
                raise RoutesFileError(f"{spec.where}: fallback '{name}' is neither in the file nor in the database.")
            link = GroupFallback(group=group, fallback=target, position=position)
            try:
                link.full_clean()
            except ValidationError as exc:  # a self-fallback, the same group twice, a bad position
                raise RoutesFileError(f"{spec.where}: fallback '{name}': {'; '.join(exc.messages)}") from exc
            link.save()
    edges = fallback_edges()
    for spec in specs:
        if fallbacks_lead_back(group_id=ModelGroup.objects.get(name=spec.name).pk, edges=edges):
            raise RoutesFileError(f"{spec.where}: these fallbacks lead back to this group (a loop).")
