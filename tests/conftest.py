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
- The test database's name gets this pytest process's id: the SQLite test database is a
  file under var/ (so a server subprocess can share it), and two pytest runs at once
  (two terminals, CI and a developer, parallel helpers) would otherwise create, flush and
  delete the same file (or PostgreSQL database) under each other ("disk I/O error").
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


def _per_process_test_database() -> None:
    from django.conf import settings

    if not settings.configured:
        return
    db = settings.DATABASES["default"]  # the very dict django.db.connection will use
    test = db.setdefault("TEST", {})
    if db["ENGINE"] == "django.db.backends.sqlite3":
        name = test.get("NAME")
        if name and name != ":memory:" and not str(name).startswith("file:"):
            path = Path(name)
            test["NAME"] = str(path.with_name(f"{path.stem}-{os.getpid()}{path.suffix}"))
    elif not test.get("NAME"):
        test["NAME"] = f"test_{db['NAME']}_{os.getpid()}"


def pytest_unconfigure(config) -> None:
    """Django deletes the SQLite test database file but not its WAL side files."""
    from django.conf import settings

    if not settings.configured or settings.DATABASES["default"]["ENGINE"] != "django.db.backends.sqlite3":
        return
    name = settings.DATABASES["default"].get("TEST", {}).get("NAME")
    if name and not os.path.exists(name):
        for suffix in ("-wal", "-shm", "-journal"):
            try:
                os.remove(name + suffix)
            except OSError:
                pass


_install_test_encryption_key()
_per_process_test_database()
