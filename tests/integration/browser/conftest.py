"""Browser tests: Debian's chromium driven by selenium through chromedriver, against the live test server
(tests/integration/conftest.py: `gateway`, the fake upstreams, the route factories).

- `browser`: a headless Chromium at 1400×1000 (a laptop screen), fresh profile, no background networking (this
  machine has no network besides the package registries). When a test fails, a screenshot and the page's HTML
  go to var/test-artifacts/browser/ (or $TEST_ARTIFACTS_DIR) and their paths into the test report.
- `console`: helpers bound to the browser and the gateway: `login()`, `open(path)`, `fill(name, value)`,
  `select(name, label)`, `submit(selector)`.
- When chromium or chromedriver is missing these tests skip, saying why; `make test` installs both when it runs
  as root (CI does), so there they run.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from tests.integration.admin_session import make_superuser

ROOT = Path(__file__).resolve().parents[3]
CHROMIUM = os.environ.get("CHROMIUM_BIN", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CHROMEDRIVER_BIN", "/usr/bin/chromedriver")
ARTIFACTS = Path(os.environ.get("TEST_ARTIFACTS_DIR", ROOT / "var" / "test-artifacts")) / "browser"
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1400,1000")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"_report_{report.when}", report)
    if report.when == "call" and report.failed and getattr(item, "_artifacts", None):
        report.sections.append(("browser artifacts", "\n".join(str(p) for p in item._artifacts)))
    return report


@pytest.fixture(scope="session")
def _chromium() -> tuple[str, str]:
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not (os.path.exists(p) or shutil.which(p))]
    if missing:
        pytest.skip(f"browser tests need Debian's chromium and chromium-driver ({', '.join(missing)} missing; "
                    "`make test` installs them with apt-get when run as root)")
    return CHROMIUM, CHROMEDRIVER


@pytest.fixture
def browser(request, _chromium):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary, driver_path = _chromium
    profile = tempfile.mkdtemp(prefix="gw-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    driver.implicitly_wait(0)
    try:
        yield driver
    finally:
        report = getattr(request.node, "_report_call", None)
        if report is None or report.failed:
            request.node._artifacts = save_artifacts(driver, request.node.name)
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def save_artifacts(driver, name: str) -> list[Path]:
    from selenium.common.exceptions import WebDriverException

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    stem = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:120]
    shot, page = ARTIFACTS / f"{stem}.png", ARTIFACTS / f"{stem}.html"
    try:
        driver.save_screenshot(str(shot))
        page.write_text(driver.page_source)
    except (OSError, WebDriverException) as exc:  # a dead browser still lets the test report its own failure
        return [Path(f"(no artifacts: {exc})")]
    return [shot, page]


class Console:
    """The admin, driven the way a person would: pages, fields, buttons. Waits are on conditions, not time."""

    def __init__(self, driver, base_url: str) -> None:
        self.driver, self.base = driver, base_url

    def open(self, path: str) -> None:
        self.driver.get(self.base + path)

    def login(self) -> str:
        from selenium.webdriver.common.by import By

        username, password = make_superuser()
        self.open("/admin/login/")
        self.driver.find_element(By.NAME, "username").send_keys(username)
        self.driver.find_element(By.NAME, "password").send_keys(password)
        self.submit("input[type=submit]")
        self.wait(lambda d: "/admin/login/" not in d.current_url)
        return username

    def find(self, css: str):
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.CSS_SELECTOR, css)

    def find_all(self, css: str):
        from selenium.webdriver.common.by import By

        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def fill(self, name: str, value: str) -> None:
        field = self.find(f'[name="{name}"]')
        field.clear()
        field.send_keys(value)

    def select(self, name: str, label: str) -> None:
        from selenium.webdriver.support.ui import Select

        Select(self.find(f'select[name="{name}"]')).select_by_visible_text(label)

    def submit(self, css: str) -> None:
        """Click a submit button and wait for the next page (the old one goes stale)."""
        old = self.find("html")
        self.find(css).click()
        self.wait(lambda _: _gone(old))

    def wait(self, condition, timeout: float = 15):
        from selenium.webdriver.support.ui import WebDriverWait

        return WebDriverWait(self.driver, timeout).until(condition)

    def text(self) -> str:
        return self.find("body").text


def _gone(element) -> bool:
    """The element's document was replaced. Selenium's staleness_of() expects a 'stale element'
    error; Chromium may instead answer that the node 'does not belong to the document'."""
    from selenium.common.exceptions import StaleElementReferenceException, WebDriverException

    try:
        element.is_enabled()
    except StaleElementReferenceException:
        return True
    except WebDriverException as exc:
        if "does not belong to the document" in str(exc):
            return True
        raise
    return False


@pytest.fixture
def console(browser, gateway) -> Console:
    return Console(browser, gateway)
