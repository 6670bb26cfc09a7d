"""Export the routes as the YAML `import_routes` reads back unchanged (routing/config/importer.py).

- `model_list`: one entry per deployment, as in a LiteLLM file (`model` is `<prefix>/<upstream model>`;
  `rpm`, `tpm`, `weight`, `order` when not the default), plus `model_info.id` (the deployment's name, its
  identity) and `model_info.gateway` (its policy, and every other setting that is not the default).
- `model_groups`: every group with its non-default settings and its fallbacks.
- `param_policies`: every policy that is not a built-in preset (presets are referred to by name).

Keys are never written. A deployment with a key gets `api_key: os.environ/NAME`, where NAME is
- the variable its key was imported from (`Deployment.api_key_env`), when it was; or else
- `GATEWAY_KEY_<GROUP>_<DEPLOYMENT>`: both names upper-cased, every run of characters other than A-Z and
  0-9 turned into one `_`. A name that would be longer than 120 characters, or that another deployment's
  key would also get, ends with `_` and 8 hex digits of the SHA-256 of "<group>\\n<deployment>" instead.
`export_routes()` returns the variables to set before a re-import; a deployment without a key has no
`api_key` (a re-import then keeps whatever key the deployment has).

The output depends only on the configuration: sorted in Python (not by the database's collation), no
timestamps, no ids, so exporting twice, or from SQLite and PostgreSQL, gives the same text.
"""

import hashlib
import re
from collections import Counter
from dataclasses import dataclass

import yaml

from routing.config.importer import ENV_PREFIX, GATEWAY_SETTINGS, INT_PARAMS, provider_for
from routing.config.route_sections import GROUP_SETTINGS, RULE_FIELDS, default
from routing.models import Deployment, ModelGroup, ParamPolicy, PolicyRule, Provider

ENV_NAME_PREFIX = "GATEWAY_KEY"
ENV_NAME_MAX = 120
PREFIX_FOR = {Provider.AZURE: "azure", Provider.OPENAI: "openai", Provider.OPENAI_COMPATIBLE: "openai",
              Provider.MOCK: "mock"}
HEADER = ("# Routes exported by `manage.py export_routes`; load them with `manage.py import_routes FILE`.\n"
          "# No upstream key is in this file: each api_key names the environment variable to set.\n")


@dataclass(frozen=True)
class KeyVariable:
    name: str
    deployments: tuple[str, ...]  # "group → deployment", for each deployment whose key it holds


@dataclass(frozen=True)
class RoutesExport:
    text: str
    variables: tuple[KeyVariable, ...]


def key_env_name(group: str, deployment: str, *, suffixed: bool = False) -> str:
    parts = [ENV_NAME_PREFIX] + [re.sub(r"[^A-Z0-9]+", "_", p.upper()).strip("_") for p in (group, deployment)]
    name = "_".join(p for p in parts if p)
    if suffixed or len(name) > ENV_NAME_MAX:
        digest = hashlib.sha256(f"{group}\n{deployment}".encode()).hexdigest()[:8].upper()
        name = f"{name[:ENV_NAME_MAX - 9].rstrip('_')}_{digest}"
    return name


def export_routes() -> RoutesExport:
    deployments = sorted(Deployment.objects.select_related("group", "policy"),
                         key=lambda d: (d.group.name, d.priority, d.pk))
    groups = sorted(ModelGroup.objects.prefetch_related("fallback_links__fallback"), key=lambda g: g.name)
    policies = sorted(ParamPolicy.objects.filter(builtin=False).select_related("extends").prefetch_related("rules"),
                      key=lambda p: p.name)
    env_names = _key_variables(deployments)
    doc: dict = {"model_list": [_deployment(d, env_names.get(d.pk)) for d in deployments]}
    if groups:
        doc["model_groups"] = [_group(g) for g in groups]
    if policies:
        doc["param_policies"] = [_policy(p) for p in policies]
    text = HEADER + yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, default_flow_style=False, width=10**6)
    users: dict[str, list[str]] = {}
    for d in deployments:
        if d.pk in env_names:
            users.setdefault(env_names[d.pk], []).append(f"{d.group.name} → {d.name}")
    return RoutesExport(text=text, variables=tuple(KeyVariable(n, tuple(u)) for n, u in sorted(users.items())))


def _key_variables(deployments: list[Deployment]) -> dict[int, str]:
    """{deployment id: variable name} for every deployment that has a key."""
    keyed = [d for d in deployments if d.api_key_encrypted]
    stored = {d.api_key_env for d in keyed if d.api_key_env}
    derived = {d.pk: key_env_name(d.group.name, d.name) for d in keyed if not d.api_key_env}
    clashes = Counter(derived.values())
    return {d.pk: d.api_key_env or (key_env_name(d.group.name, d.name, suffixed=True)
                                    if clashes[derived[d.pk]] > 1 or derived[d.pk] in stored else derived[d.pk])
            for d in keyed}


def _non_defaults(obj, model, fields) -> dict:
    return {f: getattr(obj, f) for f in fields if getattr(obj, f) != default(model, f)}


def _deployment(d: Deployment, env_name: str | None) -> dict:
    prefix = PREFIX_FOR[d.provider]
    params: dict = {"model": f"{prefix}/{d.upstream_model}"}
    if d.api_base:
        params["api_base"] = d.api_base
    if env_name:
        params["api_key"] = ENV_PREFIX + env_name
    if d.api_version:
        params["api_version"] = d.api_version
    params.update({key: getattr(d, field) for key, (field, _) in INT_PARAMS.items()
                   if getattr(d, field) != default(Deployment, field)})
    gateway: dict = {}
    if provider_for(prefix, d.api_base) != d.provider:
        gateway["provider"] = d.provider
    gateway["policy"] = d.policy.name if d.policy else None
    gateway.update(_non_defaults(d, Deployment, GATEWAY_SETTINGS))
    return {"model_name": d.group.name, "litellm_params": params, "model_info": {"id": d.name, "gateway": gateway}}


def _group(g: ModelGroup) -> dict:
    entry = {"name": g.name, **_non_defaults(g, ModelGroup, GROUP_SETTINGS)}
    links = sorted(g.fallback_links.all(), key=lambda link: (link.position, link.pk))
    if links:
        entry["fallbacks"] = [link.fallback.name if link.position == index
                              else {"group": link.fallback.name, "position": link.position}
                              for index, link in enumerate(links)]
    return entry


def _policy(p: ParamPolicy) -> dict:
    entry: dict = {"name": p.name}
    if p.description:
        entry["description"] = p.description
    if p.extends is not None:
        entry["extends"] = p.extends.name
    rules = sorted(p.rules.all(), key=lambda r: (r.position, r.pk))
    entry["rules"] = [_rule(rule, index) for index, rule in enumerate(rules)]
    return entry


def _rule(rule: PolicyRule, index: int) -> dict:
    entry = {"action": rule.action, "path": rule.path}
    entry.update(_non_defaults(rule, PolicyRule, [f for f in RULE_FIELDS if f not in ("position", "action", "path")]))
    if rule.position != index:
        entry["position"] = rule.position
    return entry
