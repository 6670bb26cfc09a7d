"""What a provider module is: a few pure functions over a DeploymentSnap.

    url(dep, path, query) -> str      where `path` is relative to the OpenAI API root,
                                      e.g. "responses", "responses/resp_1/cancel",
                                      "chat/completions"; `query` is the client's raw query
    auth_headers(dep) -> dict         credentials only (body rewriting is policy's job)

The built-in mock also provides an httpx transport (`mock.Transport`), mounted by the
upstream client on the mock's own origin.
"""


def join(base: str, path: str, query: str = "") -> str:
    url = base.rstrip("/") + "/" + path
    return f"{url}?{query}" if query else url


def with_query(url: str, query: str) -> str:
    if not query:
        return url
    return f"{url}&{query}" if "?" in url else f"{url}?{query}"
