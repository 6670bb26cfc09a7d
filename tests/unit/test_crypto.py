"""routing/crypto.py: encryption at rest, rotation, masking."""

import pytest

from routing import crypto


def test_roundtrip_and_ciphertext_hides_plaintext(settings):
    settings.GATEWAY = {**settings.GATEWAY, "ENCRYPTION_KEYS": ["k-one"]}
    token = crypto.encrypt("sk-upstream-secret-1234")
    assert token.startswith("fernet:") and "sk-upstream" not in token
    assert crypto.decrypt(token) == "sk-upstream-secret-1234"


def test_rotation_old_key_still_decrypts(settings):
    settings.GATEWAY = {**settings.GATEWAY, "ENCRYPTION_KEYS": ["old"]}
    token = crypto.encrypt("secret-value")
    settings.GATEWAY = {**settings.GATEWAY, "ENCRYPTION_KEYS": ["new", "old"]}
    assert crypto.decrypt(token) == "secret-value"
    settings.GATEWAY = {**settings.GATEWAY, "ENCRYPTION_KEYS": ["other"]}
    with pytest.raises(ValueError):
        crypto.decrypt(token)


def test_mask_shows_at_most_four_characters():
    assert crypto.mask("sk-abcdefghijklmnop") == "••••mnop"
    assert crypto.mask("short") == "••••"
    assert crypto.mask("") == ""
