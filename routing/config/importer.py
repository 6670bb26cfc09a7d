"""Import a LiteLLM-style `model_list` (YAML) into groups, deployments and policies.

It runs in two phases, so a bad file writes nothing:
1. `parse_routes(text, environ=...)` is pure. It validates every entry and resolves
   `os.environ/NAME`. Any problem raises `RoutesFileError`, naming the entry index.
2. `apply_routes(routes)` upserts in ONE transaction. The model's own validation (URL
   shape, lengths) also fails the whole file. The usual post_save signals bump the route
   version, so running gateways reload within seconds.

Mapping (one entry = one deployment; entries sharing a `model_name` share a group):
- `model: azure/<deployment>` gives provider azure, upstream_model <deployment>.
- `model: openai/<model>` gives provider openai when `api_base` is absent or on api.openai.com.
  Any other host gives openai_compatible, which is how LiteLLM users point `openai/` at vLLM and
  friends. `hosted_vllm/<model>` (LiteLLM's vLLM prefix) also gives openai_compatible.
- `api_key`, `api_base`, `api_version` take a literal or `os.environ/NAME`. A missing variable is an error.
- `rpm`, `tpm`, `weight`, `order` (becomes priority) are set from the file. An absent field resets to the
  model default, because the file is the source of truth for what it maps. Two fields are kept when
  absent: `api_key` (ops may set keys in the admin only) and the policy chosen in the admin.
- `additional_drop_params` becomes the policy `import:<group>:<deployment>`. It extends the provider
  preset (azure-responses for Azure) and holds one drop rule per path (any endpoint). A re-import
  replaces its rules. When the list disappears, the deployment goes back to the provider preset
  and the stale import policy is deleted.
- Deployment identity is `model_info.id`, or else `<provider>:<upstream_model>@<host>[:<port>]`
  (the port when the URL names one: two vLLM servers on one host are two deployments). So a
  re-import updates rows in place, and an unchanged row is not written at all ("unchanged").
  A row imported before the port was part of the identity (`…@<host>`, same api_base) is
  found and renamed, not duplicated.
  Deployments in the database but not in the file are left alone and counted in a note.
- Top-level `router_settings` / `litellm_settings` / `general_settings` are ignored, with a note.
"""

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import yaml
from django.core.exceptions import ValidationError
from django.db import transaction

from routing import services
from routing.models import Deployment, ModelGroup, ParamPolicy, PolicyRule, Provider
from routing.policy import compile_rule

ENV_PREFIX = "os.environ/"
PREFIXES = {"azure": Provider.AZURE, "openai": Provider.OPENAI, "hosted_vllm": Provider.OPENAI_COMPATIBLE}
OPENAI_HOSTS = ("", "api.openai.com")
IGNORED_SECTIONS = ("router_settings", "litellm_settings", "general_settings", "environment_variables")
INT_PARAMS = {"rpm": ("rpm", 0), "tpm": ("tpm", 0), "weight": ("weight", 1), "order": ("priority", None)}
KNOWN_PARAMS = {"model", "api_base", "api_key", "api_version", "additional_drop_params", *INT_PARAMS}
NAME_MAX = 200


class RoutesFileError(Exception):
    """The file cannot be imported as a whole; the message says where and why."""


@dataclass(frozen=True)
class Route:
    index: int
    group: str
    name: str
    provider: str
    upstream_model: str
    api_base: str = ""
    api_version: str = ""
    api_key: str | None = None  # None: keep the stored key
    legacy_name: str = ""  # the identity earlier versions gave this entry (no port), if different
    ints: tuple[tuple[str, int | None], ...] = ()  # (model field, value) for rpm, tpm, weight, priority
    drop_params: tuple[str, ...] = ()


@dataclass
class ImportSummary:
    groups_created: int = 0
    groups_unchanged: int = 0
    deployments_created: int = 0
    deployments_updated: int = 0
    deployments_unchanged: int = 0
    dry_run: bool = False
    notes: list[str] = field(default_factory=list)


# --- phase 1: parse and validate (no database) -----------------------------------------------------------------

def parse_routes(text: str, *, environ: Mapping[str, str]) -> tuple[list[Route], list[str]]:
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RoutesFileError(f"Not valid YAML: {exc}") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("model_list"), list):
        raise RoutesFileError("The file needs a top-level 'model_list' list.")
    notes = [f"'{key}' is ignored: groups and deployments are tuned in the admin."
             for key in IGNORED_SECTIONS if key in doc]
    routes, seen = [], {}
    for index, entry in enumerate(doc["model_list"]):
        route, entry_notes = _parse_entry(index, entry, environ)
        notes += entry_notes
        if (route.group, route.name) in seen:
            first = seen[route.group, route.name]
            raise RoutesFileError(f"model_list[{index}]: same deployment as model_list[{first}] "
                                  f"('{route.name}' in '{route.group}'); give one a distinct model_info.id.")
        seen[route.group, route.name] = index
        routes.append(route)
    return routes, notes


def _parse_entry(index: int, entry, environ: Mapping[str, str]) -> tuple[Route, list[str]]:
    where = f"model_list[{index}]"

    def fail(message: str):
        raise RoutesFileError(f"{where}: {message}")

    if not isinstance(entry, dict):
        fail("each entry must be a mapping with model_name and litellm_params.")
    group, params, info = entry.get("model_name"), entry.get("litellm_params"), entry.get("model_info") or {}
    if not isinstance(group, str) or not group.strip():
        fail("missing 'model_name'.")
    where = f"model_list[{index}] ({group})"
    if not isinstance(params, dict) or not isinstance(params.get("model"), str) or not params["model"].strip():
        fail("missing 'litellm_params.model'.")
    if not isinstance(info, dict):
        fail("'model_info' must be a mapping.")
    prefix, _, upstream_model = params["model"].partition("/")
    if prefix not in PREFIXES or not upstream_model:
        fail(f"unsupported model '{params['model']}': expected one of "
             f"{', '.join(p + '/<model>' for p in PREFIXES)}.")

    def text(key: str) -> str:
        value = params.get(key)
        if isinstance(value, dt.date):  # YAML reads an unquoted 2024-10-21 as a date
            value = value.isoformat()
        if value is not None and not isinstance(value, str):
            fail(f"'{key}' must be a string.")
        if value and value.startswith(ENV_PREFIX):
            name = value[len(ENV_PREFIX):]
            if name not in environ:
                fail(f"'{key}' refers to environment variable {name}, which is not set.")
            value = environ[name]
        return (value or "").strip()

    api_base, api_version = text("api_base").rstrip("/"), text("api_version")
    api_key = text("api_key") if "api_key" in params else None
    host = (urlsplit(api_base).hostname or "").lower()
    provider = PREFIXES[prefix]
    if provider == Provider.OPENAI and host not in OPENAI_HOSTS:
        provider = Provider.OPENAI_COMPATIBLE
    missing = services.deployment_missing_fields(provider=provider, api_base=api_base, upstream_model=upstream_model)
    if missing:
        fail("; ".join(f"'{name}' is {msg[0].lower()}{msg[1:]}" for name, msg in missing.items()))
    ints = []
    for key, (model_field, minimum) in INT_PARAMS.items():
        value = params.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                  or (minimum is not None and value < minimum)):
            fail(f"'{key}' must be a whole number" + (f" >= {minimum}." if minimum is not None else "."))
        ints.append((model_field, value))
    drops = params.get("additional_drop_params") or []
    if not isinstance(drops, list) or not all(isinstance(p, str) for p in drops):
        fail("'additional_drop_params' must be a list of dotted paths.")
    for path in drops:
        try:
            compile_rule("drop", path)
        except ValueError as exc:
            fail(f"additional_drop_params: {exc}")
    try:
        port = urlsplit(api_base).port
    except ValueError:
        fail(f"'api_base' has a port that is not a number: {api_base}")
    legacy = f"{provider}:{upstream_model}@{host or 'api.openai.com'}"[:NAME_MAX]
    name = str(info.get("id") or (f"{legacy}:{port}" if port else legacy))[:NAME_MAX]
    route = Route(index=index, group=group.strip(), name=name, provider=provider, upstream_model=upstream_model,
                  api_base=api_base, api_version=api_version, api_key=api_key, ints=tuple(ints),
                  drop_params=tuple(dict.fromkeys(p.strip() for p in drops)),
                  legacy_name=legacy if not info.get("id") and legacy != name else "")
    ignored = sorted(set(params) - KNOWN_PARAMS)
    return route, [f"{where}: ignored litellm_params {', '.join(ignored)}."] if ignored else []


# --- phase 2: upsert in one transaction ------------------------------------------------------------------------

def import_routes(*, text: str, environ: Mapping[str, str], dry_run: bool = False) -> ImportSummary:
    routes, notes = parse_routes(text, environ=environ)
    summary = ImportSummary(dry_run=dry_run, notes=notes)
    with transaction.atomic():
        apply_routes(routes, summary)
        if dry_run:
            transaction.set_rollback(True)
    return summary


def apply_routes(routes: list[Route], summary: ImportSummary) -> None:
    groups: dict[str, ModelGroup] = {}
    for route in routes:
        try:
            if route.group not in groups:
                groups[route.group] = _group(route.group, summary)
            _deployment(route, groups[route.group], summary)
        except ValidationError as exc:
            messages = "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())
            raise RoutesFileError(f"model_list[{route.index}] ({route.group}): {messages}") from exc
    listed = {(r.group, r.name) for r in routes}
    others = [d for d in Deployment.objects.filter(group__in=groups.values()).select_related("group")
              if (d.group.name, d.name) not in listed]
    if others:
        summary.notes.append(f"{len(others)} deployment(s) in these groups are not in the file and were left as is: "
                             + ", ".join(str(d) for d in others[:10]))


def _group(name: str, summary: ImportSummary) -> ModelGroup:
    group = ModelGroup.objects.filter(name=name).first()
    if group is not None:
        summary.groups_unchanged += 1
        return group
    group = ModelGroup(name=name)
    group.full_clean()
    group.save()
    summary.groups_created += 1
    return group


def _deployment(route: Route, group: ModelGroup, summary: ImportSummary) -> None:
    dep = Deployment.objects.filter(group=group, name=route.name).select_related("policy").first()
    if dep is None and route.legacy_name:  # imported before the port was part of the identity
        dep = Deployment.objects.filter(group=group, name=route.legacy_name, api_base=route.api_base).first()
    created = dep is None
    dep = dep or Deployment(group=group, name=route.name)
    before = _state(dep)
    dep.name = route.name
    dep.provider, dep.api_base, dep.upstream_model = route.provider, route.api_base, route.upstream_model
    dep.api_version = route.api_version
    for model_field, value in route.ints:
        setattr(dep, model_field, value if value is not None else Deployment._meta.get_field(model_field).get_default())
    if route.api_key is not None and _stored_key(dep) != route.api_key:
        dep.api_key = route.api_key  # encrypts; skipped when equal, as Fernet output differs on every call
    stale_policy = _choose_policy(route, dep, created)
    rules_changed = _sync_policy_rules(dep.policy, route) if route.drop_params else False
    if created or rules_changed or _state(dep) != before:
        dep.full_clean()
        dep.save()
    if stale_policy is not None:
        stale_policy.delete()
    if created:
        summary.deployments_created += 1
    elif rules_changed or _state(dep) != before or stale_policy is not None:
        summary.deployments_updated += 1
    else:
        summary.deployments_unchanged += 1


def _state(dep: Deployment) -> tuple:
    return tuple(getattr(dep, f) for f in ("name", "provider", "api_base", "upstream_model", "api_version",
                                           "rpm", "tpm", "weight", "priority", "api_key_encrypted", "policy_id"))


def _stored_key(dep: Deployment) -> str | None:
    try:
        return dep.api_key
    except ValueError:  # under an encryption key we no longer have: replace it
        return None


def import_policy_name(group: str, deployment: str) -> str:
    return f"import:{group}:{deployment}"[:NAME_MAX]


def _choose_policy(route: Route, dep: Deployment, created: bool) -> ParamPolicy | None:
    """Point the deployment at its policy; returns an import policy that is no longer used (to delete)."""
    own_name = import_policy_name(route.group, route.name)
    preset = services.default_policy_for(route.provider)
    if route.drop_params:
        policy = ParamPolicy.objects.filter(name=own_name).first() or ParamPolicy(name=own_name)
        policy.description = "Managed by import_routes (additional_drop_params); a re-import replaces its rules."
        if policy.pk is None or policy.extends_id != (preset.pk if preset else None):
            policy.extends = preset
            policy.full_clean()
            policy.save()
        dep.policy = policy
        return None
    if created:
        dep.policy = preset
    elif dep.policy is not None and dep.policy.name == own_name:
        stale, dep.policy = dep.policy, preset
        return stale
    return None


def _sync_policy_rules(policy: ParamPolicy, route: Route) -> bool:
    """Make the import policy hold exactly one drop rule per path; True if anything was written."""
    wanted = [("drop", path, "any", "any", True) for path in route.drop_params]
    current = list(policy.rules.order_by("position", "id").values_list("action", "path", "endpoint", "stream",
                                                                         "enabled"))
    if current == wanted:
        return False
    policy.rules.all().delete()
    for position, path in enumerate(route.drop_params):
        PolicyRule.objects.create(policy=policy, position=position, action="drop", path=path)
    return True
