"""routing/keys.py: key format and hashing."""

from routing import keys


def test_generate_returns_key_prefix_and_its_hash():
    full, prefix, digest = keys.generate()
    assert full.startswith(f"sk-gw-{prefix}-") and len(full) > 40
    assert digest == keys.hash_key(full) and len(digest) == 64
    assert keys.generate()[0] != full
