"""Provider registry: a plain dict. Adding a provider = one module, one line, one test file."""

from types import ModuleType

from routing.providers import azure, mock, openai, openai_compatible

REGISTRY: dict[str, ModuleType] = {
    "azure": azure,
    "openai": openai,
    "openai_compatible": openai_compatible,
    "mock": mock,
}


def get(kind: str) -> ModuleType:
    return REGISTRY[kind]
