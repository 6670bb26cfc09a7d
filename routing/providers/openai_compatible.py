"""OpenAI-compatible servers (vLLM, llama.cpp, …): OpenAI's wire, your base URL, key optional."""

from routing.providers.base import join
from routing.providers.openai import auth_headers  # noqa: F401  (same Bearer auth)


def url(dep, path: str, query: str = "") -> str:
    return join(dep.api_base, path, query)
