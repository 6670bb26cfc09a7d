"""Upstream API keys at rest: Fernet (AES-128-CBC + HMAC-SHA256) under GATEWAY_ENCRYPTION_KEY.

GATEWAY_ENCRYPTION_KEY is any high-entropy string, or several separated by commas for
rotation: the first encrypts, every one of them decrypts (MultiFernet). Each is
stretched to a Fernet key with SHA-256, so ops can paste a random string without
learning Fernet's key format. Without it, SECRET_KEY is used (a system check warns).
"""

import base64
import hashlib
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings

PREFIX = "fernet:"


def _fernet_key(secret: str) -> bytes:
    return base64.urlsafe_b64encode(hashlib.sha256(secret.encode()).digest())


@lru_cache(maxsize=4)
def _cipher(secrets: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([Fernet(_fernet_key(s)) for s in secrets])


def _secrets() -> tuple[str, ...]:
    keys = tuple(k for k in settings.GATEWAY["ENCRYPTION_KEYS"] if k)
    return keys or (settings.SECRET_KEY,)


def encrypt(plaintext: str) -> str:
    return PREFIX + _cipher(_secrets()).encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    if not token.startswith(PREFIX):
        raise ValueError("not an encrypted value")
    try:
        return _cipher(_secrets()).decrypt(token[len(PREFIX):].encode()).decode()
    except InvalidToken as exc:
        raise ValueError("cannot decrypt: GATEWAY_ENCRYPTION_KEY changed?") from exc


def mask(secret: str) -> str:
    """What the admin shows of a secret: never more than its last four characters."""
    if not secret:
        return ""
    return "••••" + secret[-4:] if len(secret) >= 12 else "••••"
