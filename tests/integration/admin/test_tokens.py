"""routing/admin/tokens.py: management API tokens listed without their secret, revoked in bulk, never added here."""

from routing.management_api.models import ManagementToken
from routing.services import management_token_create
from tests.integration.admin.support import url


def test_tokens_are_listed_without_secrets_and_revoked(admin_client, admin_user):
    token, secret = management_token_create(user=admin_user, name="terraform")
    html = admin_client.get(url(ManagementToken, "changelist")).content.decode()
    assert "terraform" in html and f"gwm_{token.prefix}_" in html
    assert secret not in html and token.token_hash not in html
    probe = admin_client.get(url(ManagementToken, "changelist") + f"?token_hash__startswith={token.token_hash[:4]}")
    assert probe.status_code == 400  # lookups on the hash are refused (common.SecretLookupsRefused)
    assert admin_client.get(url(ManagementToken, "add")).status_code == 403
    admin_client.post(url(ManagementToken, "changelist"), {"action": "revoke", "_selected_action": [token.pk]})
    token.refresh_from_db()
    assert token.revoked_at is not None and not token.usable
