"""Management API tokens: what automation presents as `Authorization: Bearer gwm_…` on /api/.

A token belongs to a Django user and acts with that user's role (routing/management_api/roles.py).
Like client keys (routing/keys.py) a token is generated server-side, shown once, and stored as its
prefix (public, names the token) and SHA-256 (192 random bits: a fast hash is the right tool, and a
lookup is one indexed query). Revoking keeps the row, so the audit trail still names it.
"""

from django.conf import settings
from django.db import models
from django.utils import timezone

from routing import keys

TOKEN_PREFIX = "gwm_"


def generate() -> tuple[str, str, str]:
    """Return (full_token, prefix, token_hash)."""
    return keys.generate(TOKEN_PREFIX, "_")


hash_token = keys.hash_key


class ManagementToken(models.Model):
    name = models.CharField(max_length=200, help_text="What uses it, e.g. terraform-ci.")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="management_tokens",
                             help_text="The token acts as this user: their role (ops or auditor) and history entries.")
    prefix = models.CharField(max_length=16, unique=True, editable=False, help_text="Public part, names the token.")
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        app_label = "routing"
        ordering = ["-created_at"]
        verbose_name = "management API token"

    def __str__(self) -> str:
        return f"{self.name} ({TOKEN_PREFIX}{self.prefix}…)"

    @property
    def usable(self) -> bool:
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > timezone.now())
