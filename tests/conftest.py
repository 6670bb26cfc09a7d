"""Test-session setup shared by every test directory.

- The repository root goes on sys.path, so every test imports the project and the
  test helpers the same way (`from tests.fakes.upstream import FakeUpstream`,
  `from tests.integration.server import GatewayServer`) whichever way pytest was started
  (`python -m pytest`, `.venv/bin/pytest`, from another directory).
- Upstream API keys are encrypted at rest (routing/crypto.py). The test process writes
  Deployment rows that a gateway *server subprocess* must decrypt, so both must use the
  same GATEWAY_ENCRYPTION_KEY. pytest-django loads Django settings before this file is
  imported, so when the environment gave no key, a fixed test key is put into the live
  settings here; the integration server is then started with exactly the keys the test
  process uses (tests/integration/server.py reads them from the settings).
"""

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

TEST_ENCRYPTION_KEY = "test-only-gateway-encryption-key-5f0c1e9a7b"


def _install_test_encryption_key() -> None:
    from django.conf import settings

    if not settings.configured:
        return
    if not any(settings.GATEWAY.get("ENCRYPTION_KEYS") or ()):
        # In place: pytest-django's `settings` fixture restores this very dict object.
        settings.GATEWAY["ENCRYPTION_KEYS"] = [TEST_ENCRYPTION_KEY]
    os.environ.setdefault("GATEWAY_ENCRYPTION_KEY", ",".join(settings.GATEWAY["ENCRYPTION_KEYS"]))


_install_test_encryption_key()
