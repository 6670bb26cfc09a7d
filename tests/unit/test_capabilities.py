"""routing/capabilities.py: provider defaults and what ops override (pure)."""

import pytest

from routing.capabilities import ALL, resolve

EVERYTHING = ALL
CHAT_ONLY = frozenset({"chat"})


@pytest.mark.parametrize("provider, api_version, expected", [
    ("openai", "", EVERYTHING),
    ("mock", "", EVERYTHING),
    ("azure", "", EVERYTHING),  # the v1 API
    ("azure", "2025-04-01-preview", EVERYTHING),
    ("azure", "2024-09-01-preview", EVERYTHING),
    ("azure", "2024-08-01-preview", EVERYTHING - {"chat.stream_usage"}),  # before stream_options existed
    ("azure", "2024-02-01", EVERYTHING - {"chat.stream_usage"}),
    ("openai_compatible", "", CHAT_ONLY),
])
def test_provider_defaults(provider, api_version, expected):
    assert resolve(provider, api_version) == expected


def test_explicit_values_win_over_defaults():
    assert resolve("openai_compatible", responses=True) == {"responses", "chat", "compact"}
    assert resolve("openai_compatible", stream_usage=True, reasoning_effort=True) == CHAT_ONLY | {
        "chat.stream_usage", "chat.reasoning_effort"}
    assert resolve("azure", chat=False) == EVERYTHING - {"chat"}
    assert resolve("azure", stream_usage=False, api_version="") == EVERYTHING - {"chat.stream_usage"}


def test_compact_follows_responses_unless_set():
    assert "compact" not in resolve("openai_compatible")
    assert "compact" in resolve("openai_compatible", compact=True)
    assert "compact" not in resolve("azure", compact=False)
    assert "compact" not in resolve("azure", responses=False)
