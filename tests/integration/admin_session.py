"""Logging in to the live server's admin with a plain HTTP client (what a browser does, minus the browser):
`admin_http(gateway)` returns an httpx.Client with a staff session, and `csrf(client)` the token to post with."""

from __future__ import annotations

import re
import uuid

import httpx
from django.contrib.auth import get_user_model


def make_superuser() -> tuple[str, str]:
    """A fresh superuser in the test database (committed: the server must see it); returns (username, password)."""
    username, password = f"ops-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    get_user_model().objects.create_superuser(username, f"{username}@example.test", password)
    return username, password


def csrf(client: httpx.Client) -> str:
    return client.cookies["csrftoken"]


def login(base_url: str, username: str, password: str) -> httpx.Client:
    client = httpx.Client(base_url=base_url, timeout=30, follow_redirects=False)
    page = client.get("/admin/login/")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    done = client.post("/admin/login/?next=/admin/", data={"username": username, "password": password,
                                                           "csrfmiddlewaretoken": token, "next": "/admin/"},
                       headers={"Referer": base_url + "/admin/login/"})
    assert done.status_code == 302, done.text[:500]
    return client


def post_form(client: httpx.Client, path: str, data: dict | None = None) -> httpx.Response:
    return client.post(path, data={**(data or {}), "csrfmiddlewaretoken": csrf(client)},
                       headers={"Referer": str(client.base_url) + path})
