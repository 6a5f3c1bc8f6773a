"""The console in headless Chromium, under the real CSP: filters, search, pages, a button, live rows."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.admin.models import LogEntry
from django.db import connections, transaction
from django.utils import timezone

from executions import events
from executions.models import Execution
from tests.chromium import log_in
from tests.processes import ARTIFACTS, http

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

ROWS = 70  # more than a page (50)


@pytest.fixture
def executions(db_url) -> list[str]:
    """ROWS executions, newest last; every third one running, one per run id. Made before the browser starts."""
    now = timezone.now()
    ids = []
    for index in range(ROWS):
        created = now - timedelta(minutes=ROWS - index)
        status = "running" if index % 3 == 0 else "succeeded"
        with transaction.atomic():
            record = Execution.objects.create(
                id=f"exec_{index:04d}_console", run_id=f"run_{index:04d}", node_id="echo", target_name="echo",
                status=status, run_at=created, created_at=created, updated_at=created, started_at=created,
            )  # fmt: skip
            events.record(record, events.QUEUED, created)
        ids.append(record.id)
    return ids


def orm(read: Callable[[], Any]) -> Any:
    """Run an ORM read in another thread: Django refuses them in this one while Playwright's loop runs."""

    def run() -> Any:
        try:
            return read()
        finally:
            connections.close_all()

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(run).result()


def open_console(browser, url: str):
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    log_in(page, url, "staff")
    page.wait_for_url(f"{url}/dashboard/")
    return page


def listed(page) -> list[str]:
    return page.eval_on_selector_all(
        "#executions tbody tr[data-execution-id]", "rows => rows.map(r => r.dataset.executionId)"
    )


def test_the_status_filter_submits_itself_under_the_csp(launch, executions, browser):
    url = launch.server()
    page = open_console(browser, url)
    page.select_option("select[name=status]", "running")  # no button pressed: the static script submits
    page.wait_for_url("**/dashboard/?*status=running*")
    shown = listed(page)
    statuses = orm(lambda: set(Execution.objects.filter(id__in=shown).values_list("status", flat=True)))
    assert shown and statuses == {"running"}
    assert len(shown) == len([i for i in range(ROWS) if i % 3 == 0])
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "console-filtered.png"), full_page=True)


def test_search_and_paging(launch, executions, browser):
    url = launch.server()
    page = open_console(browser, url)
    first = listed(page)
    assert first == list(reversed(executions))[:50]
    page.click("#older")
    page.wait_for_url("**before=*")
    assert listed(page) == list(reversed(executions))[50:]
    page.click("#newer")
    page.wait_for_url("**after=*")
    assert listed(page) == first

    page.fill("input[name=q]", "run_0012")
    page.press("input[name=q]", "Enter")
    page.wait_for_url("**q=run_0012*")
    assert listed(page) == ["exec_0012_console"]


def test_the_cancel_button_asks_first_then_cancels_and_the_row_says_so(launch, executions, browser):
    url = launch.server()
    page = open_console(browser, url)
    target = executions[-1]  # running (index 69 is a multiple of 3)
    page.goto(f"{url}/dashboard/executions/{target}/")
    page.once("dialog", lambda dialog: dialog.dismiss())
    page.click("button.action-cancel")
    assert page.locator("[data-field=status]").first.text_content() == "running"  # dismissed: nothing sent
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("button.action-cancel")
    page.wait_for_selector(".message-success")
    assert "Cancelled" in page.locator(".message-success").text_content()
    assert page.locator("h1 [data-field=status]").text_content() == "cancelled"
    assert orm(lambda: LogEntry.objects.get(object_id=target).user.username) == "staff"
    page.screenshot(path=str(ARTIFACTS / "console-cancelled.png"), full_page=True)


def test_a_new_execution_appears_live_only_where_the_filters_list_it(launch, db_url, browser):
    url = launch.server()
    for node_id in ("echo", "elsewhere"):
        node = {"id": node_id, "base_url": "http://127.0.0.1:9", "reasoners": [{"id": "echo"}], "skills": []}
        assert http("POST", f"{url}/api/v1/nodes/register", node)[0] == 201
    everything = open_console(browser, url)
    other_node = open_console(browser, url)
    other_node.goto(f"{url}/dashboard/?node=elsewhere")
    for page in (everything, other_node):
        page.wait_for_selector('#stream-state[data-state="live"]', timeout=15_000)
    fired = []
    for target in ("echo.echo", "elsewhere.echo"):
        status, body, _ = http("POST", f"{url}/api/v1/execute/async/{target}", {"input": {}})
        assert status == 202, body
        fired.append(body["execution_id"])
    for execution_id in fired:
        everything.wait_for_selector(f'tr[data-execution-id="{execution_id}"]', timeout=15_000)
    # A stream delivers in order: once the second row is there, the first event was heard and left out.
    other_node.wait_for_selector(f'tr[data-execution-id="{fired[1]}"]', timeout=15_000)
    assert listed(other_node) == [fired[1]]
