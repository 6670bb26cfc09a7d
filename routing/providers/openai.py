"""OpenAI: `{api_base}/{path}`, `Authorization: Bearer`."""

from routing.providers.base import join

DEFAULT_BASE = "https://api.openai.com/v1"


def url(dep, path: str, query: str = "") -> str:
    return join(dep.api_base or DEFAULT_BASE, path, query)


def auth_headers(dep) -> dict[str, str]:
    return {"authorization": f"Bearer {dep.api_key}"} if dep.api_key else {}
