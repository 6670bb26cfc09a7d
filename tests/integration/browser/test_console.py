"""The ops console in a real browser (headless Debian Chromium), as ops and auditors use it: log in, styled pages,
a group, an Azure deployment against the fake upstream and a policy with a drop rule made in the admin's forms,
the preview, the Test action, a client key, a request from the openai SDK, and its row in the log with the drop."""

import json
import re

import httpx
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from routing.models import Deployment, RequestLog
from routing.services import presets_ensure
from tests.integration.server import UPSTREAM_KEY, UPSTREAM_MODEL, unique


def assert_styled(console) -> None:
    """Every stylesheet the page links loads with 200 as CSS, and its rules reached the page."""
    hrefs = [link.get_attribute("href") for link in console.find_all('link[rel="stylesheet"]')]
    assert any("/static/admin/css/base" in href for href in hrefs), hrefs
    for href in hrefs:
        response = httpx.get(href, timeout=10)
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/css"), href
    rules = console.driver.execute_script(
        "return Array.from(document.styleSheets).filter(s => s.href && s.href.includes('/admin/css/base'))"
        ".map(s => s.cssRules.length)")
    assert rules and rules[0] > 100
    header = console.driver.execute_script("return getComputedStyle(document.getElementById('header')).backgroundColor")
    assert header not in ("rgba(0, 0, 0, 0)", "transparent", "rgb(255, 255, 255)"), header


def test_ops_console_end_to_end(console, fake_azure, sdk, wait_for_log):
    presets_ensure()
    fake_azure.reject_params = {"client_metadata"}  # like Azure: the request only works if the drop happens
    group, policy = unique("azure-gpt"), unique("strict")
    console.login()
    assert_styled(console)

    # A policy with a drop rule, extending the Azure preset.
    console.open("/admin/routing/parampolicy/add/")
    console.fill("name", policy)
    console.select("extends", "azure-responses")
    console.select("rules-0-action", "Drop path")
    console.fill("rules-0-path", "client_metadata")
    console.submit('input[name="_save"]')
    assert "was added successfully" in console.text()

    # A group, then an Azure deployment against the fake upstream that uses the policy.
    console.open("/admin/routing/modelgroup/add/")
    console.fill("name", group)
    console.submit('input[name="_save"]')
    console.open("/admin/routing/deployment/add/")
    console.select("group", group)
    console.fill("name", "east")
    console.select("provider", "Azure OpenAI")
    console.fill("api_base", fake_azure.url)
    console.fill("upstream_model", UPSTREAM_MODEL)
    console.fill("new_api_key", UPSTREAM_KEY)
    console.select("policy", policy)
    console.submit('input[name="_continue"]')
    dep = Deployment.objects.get(group__name=group)
    assert dep.api_key == UPSTREAM_KEY and UPSTREAM_KEY not in console.driver.page_source

    # The Test action: one request through the real path.
    console.submit("#gw-test")
    assert console.find("#gw-test-status").text == "200"
    assert '"object": "response"' in console.find("#gw-test-answer").text.replace('":"', '": "')

    # The preview, from the policy's page: what the upstream would receive for a pasted body.
    console.open(f"/admin/routing/parampolicy/{dep.policy_id}/change/")
    console.find("#gw-preview-link").click()
    console.wait(lambda d: "/preview/" in d.current_url)
    body = {"model": group, "input": "hi", "stream": True, "stream_options": {"include_usage": True},
            "client_metadata": {"user": "u1"}}
    console.fill("body", json.dumps(body))
    console.submit("#gw-run-preview")
    changes = console.find("#gw-preview-changes").text
    assert re.search(r"drop stream_options .*azure-responses", changes)
    assert re.search(rf"drop client_metadata .*{policy}", changes)
    assert json.loads(console.find("#gw-preview-body").text) == {"model": UPSTREAM_MODEL, "input": "hi",
                                                                   "stream": True}
    assert console.find("#gw-preview-url").text == f"{fake_azure.url}/openai/v1/responses"
    assert "••••" in console.text() and UPSTREAM_KEY not in console.driver.page_source

    # A client key, created in the admin: shown once, with a copy button.
    console.open("/admin/routing/apikey/add/")
    console.fill("name", unique("ci"))
    console.submit('input[name="_save"]')
    key = console.find("#gw-full-key").text
    assert key.startswith("sk-gw-")
    assert not [c for c in console.driver.get_cookies() if key in c["value"]]
    console.find("#gw-copy").click()
    status = console.wait(lambda d: d.find_element(By.CSS_SELECTOR, "[data-copy-status]").text)
    if status != "Copied.":  # no clipboard for this page: the key is selected for Ctrl+C instead
        assert console.driver.execute_script("return window.getSelection().toString()").strip() == key

    # A request with the openai SDK: the upstream refuses client_metadata, so it only works if it was dropped.
    raw = sdk(key).responses.with_raw_response.create(model=group, input="hello",
                                                      extra_body={"client_metadata": {"user": "u1"}})
    assert raw.http_response.status_code == 200
    assert "client_metadata" not in fake_azure.last().json
    request_id = raw.headers["x-gateway-request-id"]
    wait_for_log(request_id)

    # Its row in the log, found by searching for its id; the drop is on the row and in the detail.
    console.open("/admin/routing/requestlog/?last=15m")
    assert_styled(console)
    search = console.find("#searchbar")
    search.send_keys(request_id)
    old = console.find("html")
    search.send_keys(Keys.ENTER)
    console.wait(lambda d: old.id != d.find_element(By.TAG_NAME, "html").id)
    rows = console.find_all("#result_list tbody tr")
    assert len(rows) == 1 and "drop client_metadata" in rows[0].text
    rows[0].find_element(By.CSS_SELECTOR, "th a").click()
    console.wait(lambda d: "/change/" in d.current_url)
    assert request_id in console.text() and '"path": "client_metadata"' in console.text()

    # The dashboard draws its charts with the locally served Chart.js.
    console.open(f"/admin/routing/requestlog/dashboard/?window=1h&group={group}")
    console.wait(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-charts") == "drawn")
    total = int(console.find("#gw-total-requests").text)
    assert total == RequestLog.objects.filter(group_name=group).count() >= 2  # the test and the SDK call
