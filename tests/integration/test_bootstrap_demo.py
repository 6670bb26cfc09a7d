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
    assert password in out.getvalue()


def test_a_world_readable_file_from_an_earlier_version_is_tightened(db, base_dir):
    call_command("bootstrap_demo", stdout=StringIO())
    path = base_dir / "var" / "admin-password"
    os.chmod(path, 0o644)
    call_command("bootstrap_demo", stdout=StringIO())
    assert mode(path) == 0o600
