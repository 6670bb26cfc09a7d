"""routing/static/console/: the vendored Chart.js is the file its README names (version and sha256), the
dashboard loads that file, and nothing in the console's templates or scripts loads from another host."""

import hashlib
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
STATIC = ROOT / "routing" / "static" / "console"
TEMPLATES = ROOT / "templates"


def test_vendored_chart_js_matches_its_readme_and_the_dashboard():
    readme = (STATIC / "vendor" / "README.md").read_text()
    name, version, digest = re.search(r"`(chart-([\d.]+)\.umd\.min\.js)`.*?sha256 `([0-9a-f]{64})`", readme).groups()
    content = (STATIC / "vendor" / name).read_bytes()
    assert hashlib.sha256(content).hexdigest() == digest
    assert content.startswith(f"/*!\n * Chart.js v{version}\n".encode())
    assert b"sourceMappingURL" not in content  # collectstatic would look for the map
    assert f"console/vendor/{name}" in (TEMPLATES / "console" / "dashboard.html").read_text()


def test_no_template_or_script_loads_from_another_host():
    files = [*TEMPLATES.rglob("*.html"), *STATIC.glob("*.js"), *STATIC.glob("*.css")]
    assert files
    for path in files:
        text = path.read_text()
        assert not re.search(r"""(src|href)=["']?(https?:)?//""", text), path
        assert "cdn" not in text.lower(), path
