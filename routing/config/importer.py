"""Import a LiteLLM-style `model_list` (YAML) into groups, deployments and policies.

It runs in two phases, so a bad file writes nothing:
1. `parse_routes(text, environ=...)` is pure. It validates every entry and resolves
   `os.environ/NAME`. Any problem raises `RoutesFileError`, naming the entry index.
2. `apply_routes(parsed)` upserts in ONE transaction. Every row is validated by the admin's own
   form (routing/config/routes_validation.py: lengths, choices, NUL characters, URL shape, the
   model's validation), and any failure fails the whole file. The usual post_save signals bump
   the route version, so running gateways reload within seconds.

Mapping (one entry = one deployment; entries sharing a `model_name` share a group):
- `model: azure/<deployment>` gives provider azure, upstream_model <deployment>.
- `model: openai/<model>` gives provider openai when `api_base` is absent or on api.openai.com.
  Any other host gives openai_compatible, which is how LiteLLM users point `openai/` at vLLM and
  friends. `hosted_vllm/<model>` (LiteLLM's vLLM prefix) also gives openai_compatible.
  `mock/<model>` gives the built-in mock. The model may be empty (`openai/`) where the provider allows a blank
  upstream model (it then keeps the client's model); Azure needs its deployment name.
- `api_key`, `api_base`, `api_version` take a literal or `os.environ/NAME`. A missing variable is an error.
  For `api_key: os.environ/NAME` the deployment remembers NAME (`api_key_env`), which is what
  `export_routes` writes back; a literal key, or a key set in the admin, forgets it.
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

Gateway extensions (what `export_routes` writes; a plain LiteLLM file has none and imports as above):
- `model_info.gateway` on an entry holds the deployment's other settings by their field names
  (GATEWAY_SCHEMA): `enabled`, the four timeouts, the capability overrides, `collect_stream_usage`,
  `policy` (a policy name, or null for none) and `provider` (overrides what the model prefix implies).
  When the mapping is present it is the whole truth: a key left out takes the model default, except
  `policy`, which, left out, is chosen as for a plain entry. `policy` and `additional_drop_params`
  cannot be used together.
- top-level `model_groups` and `param_policies`: see routing/config/route_sections.py.
"""

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from urllib.parse import urlsplit

import yaml
from django.core.exceptions import ValidationError
from django.db import transaction
from django.forms import model_to_dict

from routing import services
from routing.config import route_sections
from routing.config.routes_validation import RoutesFileError, check_keys, check_text, validate_form
from routing.forms import DeploymentForm
from routing.models import Deployment, ModelGroup, ParamPolicy, PolicyRule, Provider
from routing.validators import validate_upstream_url
from routing.policy import compile_rule

ENV_PREFIX = "os.environ/"
PREFIXES = {"azure": Provider.AZURE, "openai": Provider.OPENAI, "hosted_vllm": Provider.OPENAI_COMPATIBLE,
            "mock": Provider.MOCK}
OPENAI_HOSTS = ("", "api.openai.com")
IGNORED_SECTIONS = ("router_settings", "litellm_settings", "general_settings", "environment_variables")
CHECKED_SECTIONS = ("model_list", "model_groups", "param_policies")
INT_PARAMS = {"rpm": ("rpm", 0), "tpm": ("tpm", 0), "weight": ("weight", 1), "order": ("priority", None)}
KNOWN_PARAMS = {"model", "api_base", "api_key", "api_version", "additional_drop_params", *INT_PARAMS}
NAME_MAX = 200
GATEWAY_SETTINGS = {
    "enabled": "bool", "connect_timeout": "number", "first_byte_timeout": "number", "idle_timeout": "number",
    "total_timeout": "number", "speaks_responses": "bool?", "speaks_chat": "bool?", "speaks_compact": "bool?",
    "chat_reasoning_effort": "bool?", "chat_stream_usage": "bool?", "collect_stream_usage": "bool",
}
GATEWAY_SCHEMA = {"provider": "str", "policy": "str?", **GATEWAY_SETTINGS}
ENV_NAME_MAX = Deployment._meta.get_field("api_key_env").max_length


def provider_for(prefix: str, api_base: str) -> str:
    """The provider a `litellm_params.model` prefix means with this api_base (export_routes uses it too)."""
    provider = PREFIXES[prefix]
    host = (urlsplit(api_base).hostname or "").lower()
    return Provider.OPENAI_COMPATIBLE if provider == Provider.OPENAI and host not in OPENAI_HOSTS else provider


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
    api_key_env: str = ""  # the variable api_key came from, if it fits the column
    legacy_name: str = ""  # the identity earlier versions gave this entry (no port), if different
    ints: tuple[tuple[str, int | None], ...] = ()  # (model field, value) for rpm, tpm, weight, priority
    drop_params: tuple[str, ...] = ()
    settings: tuple[tuple[str, object], ...] = ()  # model_info.gateway, complete; empty: keep as is
    policy: str | None = None
    policy_given: bool = False  # model_info.gateway.policy was in the file (None then means "no policy")


@dataclass
class ImportSummary:
    groups_created: int = 0
    groups_updated: int = 0
    groups_unchanged: int = 0
    deployments_created: int = 0
    deployments_updated: int = 0
    deployments_unchanged: int = 0
    policies: dict[str, int] | None = None  # created/updated/unchanged, when the file has param_policies
    dry_run: bool = False
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class RoutesFile:
    routes: list[Route]
    groups: list[route_sections.GroupSpec]
    policies: list[route_sections.PolicySpec]
    notes: list[str]


# --- phase 1: parse and validate (no database) -----------------------------------------------------------------

def parse_routes(text: str, *, environ: Mapping[str, str]) -> RoutesFile:
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RoutesFileError(f"Not valid YAML: {exc}") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("model_list"), list):
        raise RoutesFileError("The file needs a top-level 'model_list' list.")
    for section in CHECKED_SECTIONS:
        check_text(doc.get(section), section)
    groups, policies = route_sections.parse_groups(doc), route_sections.parse_policies(doc)
    notes = [f"'{key}' is ignored: group settings go in model_groups (or the admin)."
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
    return RoutesFile(routes=routes, groups=groups, policies=policies, notes=notes)


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
    prefix, slash, upstream_model = params["model"].partition("/")
    if prefix not in PREFIXES or not slash:
        fail(f"unsupported model '{params['model']}': expected one of "
             f"{', '.join(p + '/<model>' for p in PREFIXES)}.")
    upstream_model = upstream_model.strip()
    gateway = info.get("gateway")
    if gateway is not None:
        check_keys(f"{where}: model_info.gateway", gateway, GATEWAY_SCHEMA)
        if "provider" in gateway and gateway["provider"] not in Provider.values:
            fail(f"model_info.gateway.provider must be one of {', '.join(Provider.values)}.")

    env_names = {}

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
            value, env_names[key] = environ[name], name
        return (value or "").strip()

    api_base, api_version = text("api_base").rstrip("/"), text("api_version")
    api_key = text("api_key") if "api_key" in params else None
    try:
        validate_upstream_url(api_base)  # before the host names the deployment
    except ValidationError as exc:
        fail(f"api_base: {' '.join(exc.messages)}")
    host = (urlsplit(api_base).hostname or "").lower()
    provider = gateway["provider"] if gateway and "provider" in gateway else provider_for(prefix, api_base)
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
    name = str(info.get("id") or (f"{legacy}:{port}" if port else legacy)).strip()[:NAME_MAX]  # as the admin
    route = Route(index=index, group=group.strip(), name=name, provider=provider, upstream_model=upstream_model,
                  api_base=api_base, api_version=api_version, api_key=api_key, ints=tuple(ints),
                  drop_params=tuple(dict.fromkeys(p.strip() for p in drops)),
                  legacy_name=legacy if not info.get("id") and legacy != name else "")
    if gateway is not None:
        if "policy" in gateway and drops:
            fail("use either additional_drop_params or model_info.gateway.policy, not both.")
        settings = tuple((key, gateway.get(key, route_sections.default(Deployment, key))) for key in GATEWAY_SETTINGS)
        policy = (gateway.get("policy") or "").strip() or None
        route = replace(route, settings=settings, policy=policy, policy_given="policy" in gateway)
    env_name = env_names.get("api_key", "")
    if api_key is not None and len(env_name) <= ENV_NAME_MAX:
        route = replace(route, api_key_env=env_name)
    ignored = sorted(set(params) - KNOWN_PARAMS)
    return route, [f"{where}: ignored litellm_params {', '.join(ignored)}."] if ignored else []


# --- phase 2: upsert in one transaction ------------------------------------------------------------------------

def import_routes(*, text: str, environ: Mapping[str, str], dry_run: bool = False) -> ImportSummary:
    parsed = parse_routes(text, environ=environ)
    summary = ImportSummary(dry_run=dry_run, notes=list(parsed.notes))
    with transaction.atomic():
        apply_routes(parsed, summary)
        if dry_run:
            transaction.set_rollback(True)
    return summary


def apply_routes(parsed: RoutesFile, summary: ImportSummary) -> None:
    services.presets_ensure()  # what the file refers to by name without defining it
    if parsed.policies:
        summary.policies = route_sections.apply_policies(parsed.policies)
    groups: dict[str, ModelGroup] = {}
    for spec in parsed.groups:
        groups[spec.name], status = route_sections.apply_group(spec)
        setattr(summary, f"groups_{status}", getattr(summary, f"groups_{status}") + 1)
    for route in parsed.routes:
        if route.group not in groups:
            groups[route.group] = _group(route, summary)
        _deployment(route, groups[route.group], summary)
    route_sections.apply_fallbacks(parsed.groups)
    listed = {(r.group, r.name) for r in parsed.routes}
    others = [d for d in Deployment.objects.filter(group__in=groups.values()).select_related("group")
              if (d.group.name, d.name) not in listed]
    if others:
        summary.notes.append(f"{len(others)} deployment(s) in these groups are not in the file and were left as is: "
                             + ", ".join(str(d) for d in others[:10]))


def _where(route: Route) -> str:
    return f"model_list[{route.index}] ({route.group})"


def _group(route: Route, summary: ImportSummary) -> ModelGroup:
    group = ModelGroup.objects.filter(name=route.group).first()
    if group is not None:
        summary.groups_unchanged += 1
        return group
    data = {key: route_sections.default(ModelGroup, key) for key in route_sections.GROUP_SETTINGS}
    data["name"] = route.group
    group, _ = route_sections.save_group(ModelGroup(), data, _where(route))
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
    new_key = ""
    if route.api_key is not None:
        if _stored_key(dep) != route.api_key:
            dep.api_key = new_key = route.api_key  # encrypts; skipped when equal (Fernet output differs each call)
        dep.api_key_env = route.api_key_env
    for model_field, value in route.settings:
        setattr(dep, model_field, value)
    stale_policy = None
    if route.policy_given:
        dep.policy = _named_policy(route)
    else:
        stale_policy = _choose_policy(route, dep, created)
    rules_changed = _sync_policy_rules(dep.policy, route) if route.drop_params else False
    if created or rules_changed or _state(dep) != before:
        _validate(dep, new_key, _where(route))
        dep.save()
    if stale_policy is not None:
        stale_policy.delete()
    if created:
        summary.deployments_created += 1
    elif rules_changed or _state(dep) != before or stale_policy is not None:
        summary.deployments_updated += 1
    else:
        summary.deployments_unchanged += 1


def _validate(dep: Deployment, new_key: str, where: str) -> None:
    """The admin's deployment form on the values about to be saved (it also normalises them, as the admin does)."""
    data = {**model_to_dict(dep), "new_api_key": new_key, "clear_api_key": False}
    validate_form(DeploymentForm(data=data, instance=dep), where, renames={"new_api_key": "api_key"})


STATE_FIELDS = tuple(f.attname for f in Deployment._meta.concrete_fields
                     if f.attname not in ("id", "created_at", "updated_at"))


def _state(dep: Deployment) -> tuple:
    return tuple(getattr(dep, f) for f in STATE_FIELDS)


def _named_policy(route: Route) -> ParamPolicy | None:
    if route.policy is None:
        return None
    policy = ParamPolicy.objects.filter(name=route.policy).first()
    if policy is None:
        raise RoutesFileError(f"{_where(route)}: policy '{route.policy}' is neither in param_policies nor in the "
                              "database.")
    return policy


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
