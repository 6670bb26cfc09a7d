"""In a real browser: a parameter an upstream rejected, fixed in one click through the preview; and the lists
ops and auditors read most fit a 1400 px laptop screen."""

from django.utils import timezone
from selenium.webdriver.common.by import By

from routing.models import Deployment, RequestLog


def test_a_rejected_parameter_is_fixed_from_the_dashboard(console, azure_route, fake_azure):
    dep = azure_route(fake_azure)  # uses the built-in azure-responses preset
    preset = dep.policy
    for i in range(3):
        RequestLog.objects.create(request_id=f"req_rej{i}_{dep.pk}", created_at=timezone.now(), method="POST",
                                  endpoint="responses", path="/v1/responses", status=400, upstream_status=400,
                                  group_name=dep.group.name, deployment_id=dep.pk, deployment_name=dep.name,
                                  rejected_param="reasoning.summary", error_type="unknown_parameter")
    console.login()
    console.open("/admin/routing/requestlog/dashboard/")
    row = console.find(".gw-rejected tbody tr")
    cells = [td.text for td in row.find_elements(By.TAG_NAME, "td")]
    assert cells[:3] == [dep.name, "reasoning.summary", "3"] and cells[5] == f"req_rej2_{dep.pk}"
    row.find_element(By.CSS_SELECTOR, "a.gw-fix").click()
    console.wait(lambda d: "/drop-param/" in d.current_url)
    after = console.find("#gw-after").text
    assert "drop reasoning.summary" in after and "built-in preset" in console.text()
    console.submit("#gw-add-drop")
    dep.refresh_from_db()
    assert dep.policy.extends == preset and not dep.policy.builtin
    assert list(dep.policy.rules.values_list("action", "path")) == [("drop", "reasoning.summary")]
    assert "reasoning.summary" in console.find(".gw-effective-rules").text  # we are on the new policy's page


def no_horizontal_overflow(console) -> tuple[int, int]:
    return console.driver.execute_script(
        "const r = document.querySelector('#changelist .results');"
        "return [r.scrollWidth, r.clientWidth, document.documentElement.scrollWidth, window.innerWidth];")


def test_log_and_deployment_lists_fit_a_laptop_screen(console, azure_route, fake_azure):
    dep = azure_route(fake_azure, name="a-deployment-with-a-realistic-name")
    RequestLog.objects.create(request_id="req_" + "f" * 32, created_at=timezone.now(), method="POST",
                              endpoint="responses.input_tokens", path="/v1/responses/input_tokens", status=200,
                              stream=True, key_name="team-platform-prod", group_name=dep.group.name,
                              deployment_id=dep.pk, deployment_name=dep.name, latency_ms=5004.969088000053,
                              ttfb_ms=1234.5, input_tokens=123456, output_tokens=65432, outcome="completed",
                              policy_changes=[{"action": "drop", "path": "stream_options", "policy": "p"}])
    console.login()
    assert console.driver.execute_script("return window.innerWidth") <= 1400
    for path in ("/admin/routing/requestlog/", "/admin/routing/deployment/"):
        console.open(path)
        table, box, page, window = no_horizontal_overflow(console)
        assert table <= box and page <= window, (path, table, box, page, window)
    headers = [th.text for th in console.find_all("#result_list thead th")]
    assert {"WEIGHT", "ENABLED", "HEALTH"} <= {h.strip().upper() for h in headers}
    Deployment.objects.filter(pk=dep.pk).update(enabled=False)
