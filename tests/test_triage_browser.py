"""The triage page in a real browser: headless Chromium driven by Selenium.

The system's Chromium and chromedriver (/usr/bin, or RADAR_CHROMIUM / RADAR_CHROMEDRIVER)
are used as they are; Selenium Manager never runs (no download). Skipped, with the
reason, where selenium, Chromium or chromedriver is missing. One server (real uvicorn,
with a token) over the tiny run of tests/test_triage.py; one browser for the module.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest
import uvicorn

from radar.serve.app import ServeSettings, create_app
from radar.triage.verdicts import read_verdicts, verdicts_path
from tests.test_triage import DAY, XSS, XSS_SESSION, NoModel, make_run

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed "
                                "(pip install selenium; it is in the dev extra)")
from selenium.common.exceptions import NoAlertPresentException, StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

TOKEN = "browser-s3cret"


def _found(env: str, *names: str) -> str | None:
    given = os.environ.get(env)
    if given:
        return given if Path(given).is_file() else None
    for name in names:
        path = Path(name) if name.startswith("/") else None
        if path is not None and path.is_file():
            return str(path)
        found = shutil.which(name)
        if found:
            return found
    return None


CHROMIUM = _found("RADAR_CHROMIUM", "/usr/bin/chromium", "chromium", "chromium-browser")
CHROMEDRIVER = _found("RADAR_CHROMEDRIVER", "/usr/bin/chromedriver", "chromedriver")
pytestmark = pytest.mark.skipif(CHROMIUM is None or CHROMEDRIVER is None,
                                reason="no Chromium and chromedriver on this machine "
                                       "(apt install chromium chromium-driver)")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    run = make_run(tmp_path_factory.mktemp("triage-browser"))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    app = create_app(ServeSettings(run_dir=run, token=TOKEN), loader=NoModel)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "the server did not start"
    yield {"url": f"http://127.0.0.1:{port}", "run": run}
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser():
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", "--window-size=1400,1000",
                     "--no-first-run", "--disable-extensions"):
        options.add_argument(argument)
    try:
        driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    except Exception as exc:  # noqa: BLE001 - a browser that cannot start: skip, say why
        pytest.skip(f"Chromium did not start under chromedriver: {exc}".splitlines()[0])
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def wait(driver, condition, timeout=40):
    return WebDriverWait(driver, timeout, ignored_exceptions=(
        StaleElementReferenceException,)).until(condition)


def rendered(driver, hash_):
    """Wait until the page finished rendering the view of ``hash_``."""
    wait(driver, lambda d: d.execute_script("return document.body.dataset.ready") == hash_)


def rows(driver):
    return driver.find_elements(By.CSS_SELECTOR, "#sessions tbody tr")


def no_alert(driver):
    try:
        _ = driver.switch_to.alert
    except NoAlertPresentException:
        return True
    return False


@pytest.fixture(scope="module")
def page(server, browser):
    """The browser, logged in through the page's own form."""
    browser.get(server["url"] + "/triage")
    assert "token" in browser.page_source.lower()
    assert not browser.find_elements(By.ID, "sessions")          # no data before the token
    browser.find_element(By.NAME, "token").send_keys(TOKEN)
    browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    rendered(browser, "#list")
    return browser


def test_list_is_ranked_by_severity(page):
    assert len(rows(page)) == 20
    first = rows(page)[0].find_elements(By.TAG_NAME, "td")
    assert first[0].text == "CRITICAL"
    assert "1–20 of 20" in page.find_element(By.ID, "page-info").text
    assert "20 flagged of 60 sessions" in page.find_element(By.ID, "run").text


def column(driver, index):
    return [row.find_elements(By.TAG_NAME, "td")[index].text for row in rows(driver)]


def test_filters_narrow_the_list(page, server):
    page.get(server["url"] + "/triage#list")
    rendered(page, "#list")
    Select(page.find_element(By.ID, "f-service")).select_by_value("billing")
    wait(page, lambda d: set(column(d, 3)) == {"billing"} and len(rows(d)) == 10)
    Select(page.find_element(By.ID, "f-agreement")).select_by_value("2")
    wait(page, lambda d: len(rows(d)) == 5 and set(column(d, 2)) == {"2 of 2"})
    Select(page.find_element(By.ID, "f-severity")).select_by_value("CRITICAL")
    wait(page, lambda d: set(column(d, 0)) <= {"CRITICAL"} and len(rows(d)) < 5)
    for select in ("f-service", "f-agreement", "f-severity"):
        Select(page.find_element(By.ID, select)).select_by_index(0)
    wait(page, lambda d: len(rows(d)) == 20)
    Select(page.find_element(By.ID, "f-flagged")).select_by_value("no")     # the misses
    wait(page, lambda d: len(rows(d)) == 40 and "did not flag" in d.find_element(
        By.ID, "list-title").text)
    Select(page.find_element(By.ID, "f-flagged")).select_by_value("yes")
    wait(page, lambda d: len(rows(d)) == 20)


def test_detail_shows_raw_lines_as_text_and_the_code(page, server):
    page.get(server["url"] + f"/triage#session/{XSS_SESSION}")
    rendered(page, f"#session/{XSS_SESSION}")
    line = page.find_element(By.CSS_SELECTOR, '#d-lines li[data-line="2"]')
    assert XSS in line.text                                     # shown, as text
    assert "hot" in line.get_attribute("class")                  # the surprising event
    assert "p = 0.00120" in line.text
    assert not page.find_elements(By.CSS_SELECTOR, "#d-lines script, #d-lines img")
    assert no_alert(page)
    members = page.find_elements(By.CSS_SELECTOR, "#d-members tbody tr")
    assert [m.find_elements(By.TAG_NAME, "td")[2].text for m in members] == ["6.500", "5900"]
    page.get(server["url"] + "/triage#session/4")                # an event linked to code
    rendered(page, "#session/4")
    events = page.find_element(By.ID, "d-events").text
    assert "svc.py:10" in events and "log.info('step %s', j)" in events
    focus = page.find_element(By.CSS_SELECTOR, "#d-events pre.code .focus")
    assert "log.info" in focus.text


def test_open_a_row_from_the_list(page, server):
    page.get(server["url"] + "/triage#list")
    rendered(page, "#list")
    target = rows(page)[0]
    row = target.get_attribute("data-row")
    target.click()
    rendered(page, f"#session/{row}")
    assert page.find_element(By.ID, "view-detail").is_displayed()
    assert page.find_elements(By.CSS_SELECTOR, "#d-lines li")


def test_group_verdict_writes_the_label_file(page, server):
    page.find_element(By.ID, "who").clear()
    page.find_element(By.ID, "who").send_keys("on-call ana")
    page.get(server["url"] + "/triage#groups")
    rendered(page, "#groups")
    group = page.find_element(By.CSS_SELECTOR, '#groups tr[data-key="event:9"]')
    assert group.find_elements(By.TAG_NAME, "td")[0].text == "10"
    group.find_element(By.CSS_SELECTOR, 'button[data-verdict="anomaly"]').click()
    wait(page, lambda d: "10 session(s) marked anomaly" in d.find_element(By.ID, "message").text)
    verdicts = read_verdicts(verdicts_path(server["run"]))
    assert len(verdicts) == 10
    assert {v.verdict for v in verdicts.values()} == {"anomaly"}
    assert {v.who for v in verdicts.values()} == {"on-call ana"}
    assert all(sid % 2 for (_, sid) in verdicts)
    wait(page, lambda d: "10 anomaly" in d.find_element(
        By.CSS_SELECTOR, '#groups tr[data-key="event:9"]').text)
    assert "confirmed 10" in page.find_element(By.ID, "verdict-summary").text
    # Open the group: its members, each marked, each openable.
    page.find_element(By.CSS_SELECTOR, '#groups tr[data-key="event:9"] a.open-group').click()
    wait(page, lambda d: d.execute_script("return document.body.dataset.ready")
         .startswith("#group/"))
    assert len(rows(page)) == 10
    assert {row.find_elements(By.TAG_NAME, "td")[7].text for row in rows(page)} == {"anomaly"}
    # One member changed to a false alarm from its detail view.
    member = rows(page)[0]
    row = member.get_attribute("data-row")
    member.click()
    rendered(page, f"#session/{row}")
    page.find_element(By.CSS_SELECTOR, '#d-verdict button[data-verdict="normal"]').click()
    wait(page, lambda d: "marked normal" in d.find_element(By.ID, "message").text)
    verdicts = read_verdicts(verdicts_path(server["run"]))
    assert sorted(v.verdict for v in verdicts.values()).count("normal") == 1
    page.get(server["url"] + "/triage#verdicts")
    rendered(page, "#verdicts")
    assert "--labels" in page.find_element(By.ID, "v-command").text
    assert str(verdicts_path(server["run"])) in page.find_element(By.ID, "v-file").text
    assert DAY in verdicts_path(server["run"]).read_text()
