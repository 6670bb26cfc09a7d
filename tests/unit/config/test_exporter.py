"""The environment variable names export_routes gives upstream keys (routing/config/exporter.py)."""

import hashlib

from routing.config.exporter import ENV_NAME_MAX, key_env_name


def test_names_are_upper_case_with_one_underscore_per_run_of_other_characters():
    assert key_env_name("azure-gpt-5.5", "east") == "GATEWAY_KEY_AZURE_GPT_5_5_EAST"
    assert key_env_name("llama 3 (vLLM)", "openai_compatible:llama-3@gpu-1:8000") == (
        "GATEWAY_KEY_LLAMA_3_VLLM_OPENAI_COMPATIBLE_LLAMA_3_GPU_1_8000")
    assert key_env_name("--g--", "__d__") == "GATEWAY_KEY_G_D"
    assert key_env_name("日本", "d") == "GATEWAY_KEY_D"  # nothing usable left of the group name


def test_long_or_suffixed_names_end_with_a_hash_of_both_names():
    digest = hashlib.sha256(b"g\nd").hexdigest()[:8].upper()
    assert key_env_name("g", "d", suffixed=True) == f"GATEWAY_KEY_G_D_{digest}"
    long = key_env_name("g" * 150, "d" * 150)
    assert len(long) <= ENV_NAME_MAX and long.startswith("GATEWAY_KEY_GGG")
    assert long != key_env_name("g" * 150, "d" * 151)  # the cut-off part still tells them apart
    assert key_env_name("g" * 150, "d" * 150) == long
