"""Client API keys: generated once, shown once, stored as SHA-256.

A key looks like `sk-gw-<prefix>-<secret>`. The prefix (public, unique) names the key
in the admin and logs; the database keeps only sha256(key). Keys carry 192 bits of
randomness, so a fast hash is the right tool (as GitHub and Stripe tokens do): there
is nothing to brute-force, and lookups stay a dict access on the hot path.
"""

import hashlib
import secrets

KEY_PREFIX = "sk-gw-"


def generate(lead: str = KEY_PREFIX, separator: str = "-") -> tuple[str, str, str]:
    """Return (full_key, prefix, key_hash): `<lead><prefix><separator><secret>`. Management tokens
    (routing/management_api/models.py) are made the same way with their own lead."""
    prefix = secrets.token_hex(4)
    full = f"{lead}{prefix}{separator}{secrets.token_urlsafe(24)}"
    return full, prefix, hash_key(full)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()
