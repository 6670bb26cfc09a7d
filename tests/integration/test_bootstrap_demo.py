"""routing/management/commands/bootstrap_demo.py: the admin password file is the owner's only."""

import os
import stat
from io import StringIO

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command


@pytest.fixture
def base_dir(settings, tmp_path):
    (tmp_path / "var").mkdir()
    settings.BASE_DIR = tmp_path
    return tmp_path


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_the_admin_password_file_is_written_0600(db, base_dir):
    os.umask(0o022)  # a usual umask: the file must not depend on it
    out = StringIO()
    call_command("bootstrap_demo", stdout=out)
    path = base_dir / "var" / "admin-password"
    assert mode(path) == 0o600
    password = path.read_text()
    assert User.objects.get(username="admin").check_password(password)
    printed = out.getvalue()
    assert password not in printed and "var/admin-password" in printed  # where it is, not what it is


def test_the_master_key_is_never_printed(db, base_dir, settings):
    settings.GATEWAY = dict(settings.GATEWAY, MASTER_KEY="sk-gw-master-do-not-print-me")
    (base_dir / ".gateway.local.env").write_text("GATEWAY_MASTER_KEY=sk-gw-master-do-not-print-me\n")
    out = StringIO()
    call_command("bootstrap_demo", stdout=out)
    printed = out.getvalue()
    assert "sk-gw-master-do-not-print-me" not in printed
    assert "GATEWAY_MASTER_KEY in .gateway.local.env" in printed and "$GATEWAY_MASTER_KEY" in printed


def test_a_world_readable_file_from_an_earlier_version_is_tightened(db, base_dir):
    call_command("bootstrap_demo", stdout=StringIO())
    path = base_dir / "var" / "admin-password"
    os.chmod(path, 0o644)
    call_command("bootstrap_demo", stdout=StringIO())
    assert mode(path) == 0o600
