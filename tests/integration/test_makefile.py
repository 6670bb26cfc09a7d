"""Makefile: the local secrets file it writes is readable by its owner only."""

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(shutil.which("make") is None, reason="no make")
def test_local_env_file_is_0600(tmp_path):
    result = subprocess.run(["make", "-s", "-C", str(tmp_path), "-f", str(ROOT / "Makefile"), ".gateway.local.env",
                             f"PYTHON={sys.executable}"], capture_output=True, text=True, timeout=60,
                            preexec_fn=lambda: os.umask(0o022))
    assert result.returncode == 0, result.stderr
    path = tmp_path / ".gateway.local.env"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert "GATEWAY_MASTER_KEY=sk-gw-master-" in path.read_text()
