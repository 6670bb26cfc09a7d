"""Static files are served by the gateway itself (WhiteNoise, gateway/staticfiles.py): before `collectstatic`
under their plain names, and after it — as `make run` does — under content-hashed names, gzip-compressed and
cached for a year."""

import re
import subprocess
import sys

import httpx
import pytest

from tests.integration.server import ROOT, GatewayServer, server_database_url


def test_a_server_without_collectstatic_serves_the_admins_files(gateway):
    login = httpx.get(gateway + "/admin/login/", timeout=10).text
    hrefs = re.findall(r'href="(/static/[^"]+\.css)"', login)
    assert "/static/admin/css/base.css" in hrefs and "/static/console/console.css" in hrefs
    for href in hrefs:
        response = httpx.get(gateway + href, timeout=10)
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/css"), href
    chart = httpx.get(gateway + "/static/console/vendor/chart-4.6.1.umd.min.js", timeout=10)
    assert chart.status_code == 200 and chart.text.startswith("/*!\n * Chart.js v4.6.1")
    assert httpx.get(gateway + "/static/nope.css", timeout=10).status_code == 404


@pytest.fixture
def collected_server(django_db_setup, django_db_blocker, tmp_path):
    static_root = tmp_path / "static"
    env = {"STATIC_ROOT": str(static_root)}
    subprocess.run([sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"], cwd=ROOT, check=True,
                   env={**__import__("os").environ, **env}, timeout=120)
    with django_db_blocker.unblock():
        database_url = server_database_url()
    server = GatewayServer(database_url=database_url, workdir=tmp_path, env=env, name="collected").start()
    yield server
    server.stop()


def test_after_collectstatic_files_are_hashed_compressed_and_cached_for_a_year(collected_server):
    base = collected_server.url
    login = httpx.get(base + "/admin/login/", timeout=10).text
    css = re.search(r'href="(/static/admin/css/base\.[0-9a-f]{12}\.css)"', login)
    assert css, re.findall(r'href="(/static/[^"]+)"', login)
    response = httpx.get(base + css.group(1), headers={"Accept-Encoding": "gzip"}, timeout=10)
    assert response.status_code == 200 and response.headers["content-encoding"] == "gzip"
    assert response.headers["cache-control"] == "max-age=315360000, public, immutable"
    assert "body" in response.text  # httpx decompressed real CSS
    plain = httpx.get(base + "/static/admin/css/base.css", timeout=10)
    assert plain.status_code == 200 and "immutable" not in plain.headers.get("cache-control", "")
