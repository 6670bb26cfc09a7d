"""Azure OpenAI: OpenAI's wire with Azure's URLs and `api-key` auth.

- With an api_version: `{base}/openai/{path}?api-version=V` (the "last generation"
  preview form); Chat Completions use `{base}/openai/deployments/{name}/chat/completions`.
- Without: the v1 API, `{base}/openai/v1/{path}`.
The body's `model` is the Azure deployment name (the upstream_model rewrite does it).
Ops often paste the base with `/openai` or `/openai/v1` already on it; both are accepted.
"""

from urllib.parse import quote

from routing.providers.base import with_query


def _resource_root(api_base: str) -> str:
    base = api_base.rstrip("/")
    for suffix in ("/openai/v1", "/openai"):
        if base.endswith(suffix):
            return base[: -len(suffix)]
    return base


def url(dep, path: str, query: str = "") -> str:
    root = _resource_root(dep.api_base)
    if not dep.api_version:
        return with_query(f"{root}/openai/v1/{path}", query)
    version = f"api-version={quote(dep.api_version, safe='')}"
    if path == "chat/completions":
        target = f"{root}/openai/deployments/{quote(dep.upstream_model, safe='')}/chat/completions?{version}"
    else:
        target = f"{root}/openai/{path}?{version}"
    return with_query(target, query)


def auth_headers(dep) -> dict[str, str]:
    return {"api-key": dep.api_key} if dep.api_key else {}
