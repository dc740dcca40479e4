"""The dashboard in a real headless Chromium (Debian's ``chromium`` and ``chromium-driver``),
served by a real worker process (``manage.py worker --http 0``).

Without chromium this module is skipped, saying why; under ``CI=true`` it fails instead (CI
installs it: ``.ci/run``). ``DASHBOARD_SCREENSHOT=docs/overview.png`` also saves the overview.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests import sample_tasks
from tests.acceptance.workers import WorkerProcess, wait_until
from worker import db, runtime

TOKEN = "browser-test-dashboard-token"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", autouse=True)
def chromium_present() -> None:
    if CHROMIUM and DRIVER:
        return
    reason = "Debian's chromium and chromium-driver are not installed (apt-get install chromium chromium-driver)"  # noqa: E501
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true: {reason}")
    pytest.skip(reason)


@pytest.fixture
def browser() -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--disable-gpu", "--window-size=1280,1000"):  # fmt: skip
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(str(DRIVER)), options=options)
    driver.implicitly_wait(5)
    yield driver
    driver.quit()


@pytest.fixture
def served(database_url: str, workers: list[WorkerProcess]) -> Iterator[str]:
    """A worker serving the default queue and the dashboard; the base URL."""
    runtime.setup(database_url)
    worker = WorkerProcess(
        database_url, "--queues", "default", "--no-scheduler", "--http", "0",
        env={"WORKER_DASHBOARD_TOKEN": TOKEN},
    )  # fmt: skip
    workers.append(worker)
    found = re.search(r"dashboard listening on (http://127\.0\.0\.1:\d+/)", worker.output())
    assert found, worker.output()
    yield found.group(1).rstrip("/")
    runtime.teardown()
    assert worker.stop() == 0  # SIGTERM: the jobs drain, then the dashboard's thread stops
    assert "dashboard stopped" in worker.output()


def status_of(job_id: int) -> str:
    with db.session_scope(new=True) as session:
        return str(
            session.execute(
                sa.text("SELECT status FROM procrastinate_jobs WHERE id = :id"), {"id": job_id}
            ).scalar_one()
        )


def settled_text(browser: Any, by: str, value: str, expected: str = "") -> str:
    """The text of an element (once it contains ``expected``) on the page a click or a refresh
    led to: an element found on the page being left goes stale, and is looked up again."""
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    def text(driver: Any) -> str | None:
        found: str = driver.find_element(by, value).text
        return found if found and expected in found else None

    ignored = (NoSuchElementException, StaleElementReferenceException)
    shown: str = WebDriverWait(browser, 20, ignored_exceptions=ignored).until(
        text, message=f"{value} never showed {expected!r}"
    )
    return shown


def test_a_failed_job_is_found_retried_and_seen_succeeded(
    browser: Any, served: str, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    for n in range(3):
        sample_tasks.add.delay(n, n)
    job = int(sample_tasks.flaky.delay(str(tmp_path / "counter"), 3).id)  # fails 3 times
    wait_until(lambda: status_of(job) == "failed", message="the flaky job never failed")

    browser.get(f"{served}/jobs")
    Select(browser.find_element(By.NAME, "status")).select_by_visible_text("failed")
    browser.find_element(By.NAME, "task").send_keys("tests.flaky")
    browser.find_element(By.ID, "apply").click()
    settled_text(browser, By.CSS_SELECTOR, "#jobs tbody", str(job))  # the filtered page
    rows = browser.find_elements(By.CSS_SELECTOR, "#jobs tbody tr[data-job]")
    assert [row.get_attribute("data-job") for row in rows] == [str(job)]
    rows[0].find_element(By.LINK_TEXT, str(job)).click()
    assert browser.find_element(By.ID, "job-status").text == "failed"
    assert "TransientError" in browser.find_element(By.ID, "job-error").text

    browser.find_element(By.LINK_TEXT, "sign in to act").click()
    browser.find_element(By.NAME, "operator").send_keys("ada")
    browser.find_element(By.NAME, "token").send_keys(TOKEN)
    browser.find_element(By.CSS_SELECTOR, "#login button").click()
    browser.find_element(By.CSS_SELECTOR, "button[data-action='act_retry']").click()
    assert "queued again" in settled_text(browser, By.CSS_SELECTOR, ".flash", "queued again")

    deadline = time.monotonic() + 60
    while settled_text(browser, By.ID, "job-status") != "succeeded":
        assert time.monotonic() < deadline, "the retried job never showed as succeeded"
        time.sleep(0.5)
        browser.refresh()
    assert settled_text(browser, By.ID, "job-outcome") == "SUCCESS"
    browser.get(f"{served}/actions")
    assert f"ada 127.0.0.1 retry {job} queued again" in browser.find_element(
        By.ID, "action-log"
    ).text.replace("\n", " ")


def test_an_action_without_the_token_is_refused(browser: Any, served: str) -> None:
    from selenium.webdriver.common.by import By

    job = int(sample_tasks.broken.delay("no way").id)
    wait_until(lambda: status_of(job) == "failed", message="the broken job never failed")

    browser.get(f"{served}/jobs/{job}")
    assert browser.find_elements(By.CSS_SELECTOR, "button[data-action='act_retry']") == []
    answer = browser.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        f"fetch('/jobs/{job}/retry', {{method: 'POST'}})"
        ".then(r => r.text().then(t => done([r.status, t])));"
    )

    assert answer[0] == 403
    assert "sign in with WORKER_DASHBOARD_TOKEN first" in answer[1]
    assert status_of(job) == "failed"


def test_the_overview_chart_and_counts_match_the_database(
    browser: Any, served: str, tmp_path: Path
) -> None:
    jobs = [int(sample_tasks.add.delay(n, 1).id) for n in range(5)]
    jobs += [int(sample_tasks.broken.delay(reason).id) for reason in ("a", "b")]
    wait_until(lambda: all(status_of(j) in ("succeeded", "failed") for j in jobs))
    with db.session_scope(new=True) as session:
        ended = dict(
            session.execute(
                sa.text(
                    "SELECT CAST(type AS text), count(*) FROM procrastinate_events "
                    "WHERE type IN ('succeeded', 'failed') GROUP BY type"
                )
            ).all()
        )

    browser.get(served + "/")
    # read in one script: the live section is replaced every 5 s, elements go stale
    shown = browser.execute_script(
        "const figure = id => parseInt(document.getElementById(id).textContent, 10);"
        "const bars = [...document.querySelectorAll('#throughput g.bar')];"
        "const sum = key => bars.reduce((n, bar) => n + parseInt(bar.dataset[key], 10), 0);"
        "return {succeeded: figure('total-succeeded'), failed: figure('total-failed'),"
        " ready: figure('total-ready'), running: figure('total-running'),"
        " bars: bars.length, charted: {succeeded: sum('succeeded'), failed: sum('failed')},"
        " default_failed: document.querySelector("
        "  \"#queues tr[data-queue='default'] [data-col='failed']\").textContent.trim()};"
    )
    figures = {key: shown[key] for key in ("succeeded", "failed", "ready", "running")}
    charted = shown["charted"]
    bars = shown["bars"]

    assert ended == {"succeeded": 5, "failed": 2}
    assert {k: figures[k] for k in ("succeeded", "failed")} == ended == charted
    assert figures["ready"] == figures["running"] == 0
    assert bars == 60
    assert shown["default_failed"] == "2"
    as_of = "return document.getElementById('as-of').textContent"
    before = browser.execute_script(as_of)
    wait_until(lambda: browser.execute_script(as_of) != before, timeout=20,
               message="the overview did not refresh itself")  # fmt: skip
    if os.environ.get("DASHBOARD_SCREENSHOT"):
        browser.save_screenshot(os.environ["DASHBOARD_SCREENSHOT"])
