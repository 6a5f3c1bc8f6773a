"""The dashboard in headless Chromium: a row turns from queued to succeeded without a reload."""

from __future__ import annotations

import pytest

from nodes import policy
from nodes.auth import issue_key
from tests.chromium import log_in
from tests.processes import ARTIFACTS, http

pytestmark = [pytest.mark.e2e, pytest.mark.browser]


def fire(url: str) -> str:
    """Register a node and fire an async execution through the API; returns its id."""
    node = {"id": "echo", "base_url": "http://127.0.0.1:9", "reasoners": [{"id": "echo"}], "skills": []}
    assert http("POST", f"{url}/api/v1/nodes/register", node)[0] == 201
    status, body, _ = http("POST", f"{url}/api/v1/execute/async/echo.echo", {"input": {"note": "<b>not bold</b>"}})
    assert status == 202, body
    return body["execution_id"]


def test_a_row_changes_from_queued_to_succeeded_live(launch, db_url, browser):
    url = launch.server()
    page = browser.new_page()
    log_in(page, url, "staff")
    page.wait_for_url(f"{url}/dashboard/")
    page.wait_for_selector('#stream-state[data-state="live"]', timeout=15_000)

    execution_id = fire(url)
    status = page.locator(f'tr[data-execution-id="{execution_id}"] [data-field="status"]')
    status.wait_for(timeout=15_000)
    assert status.text_content() == "queued"
    page.evaluate("window.__notReloaded = true")

    # The agent's completion callback, as the SDK sends it (no dispatcher runs in this test).
    body = {"status": "succeeded", "result": {"answer": "<i>42</i>"}}
    assert http("POST", f"{url}/api/v1/executions/{execution_id}/status", body)[0] == 200
    status_text = f'() => document.querySelector(\'tr[data-execution-id="{execution_id}"] [data-field="status"]\')'
    page.wait_for_function(f"{status_text}.textContent === 'succeeded'", timeout=15_000)
    assert page.evaluate("window.__notReloaded") is True
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dashboard-live.png"), full_page=True)

    page.goto(f"{url}/dashboard/executions/{execution_id}/")
    assert page.locator("h1").text_content().split() == [execution_id, "succeeded"]
    assert "<b>not bold</b>" in page.locator("pre").first.text_content()  # shown as text, not markup
    assert "<i>42</i>" in page.locator("pre").nth(1).text_content()
    page.screenshot(path=str(ARTIFACTS / "dashboard-execution.png"), full_page=True)
    page.goto(f"{url}/dashboard/queue/")
    page.screenshot(path=str(ARTIFACTS / "dashboard-queue.png"), full_page=True)


@pytest.fixture
def closed_api(db_url):
    """Once a key exists the stream, like every API route, needs a key or a staff session."""
    issue_key("ops", policy.ADMIN)


def test_non_staff_and_anonymous_users_see_neither_dashboard_nor_stream(launch, closed_api, users, browser):
    url = launch.server()
    anonymous = browser.new_page()
    anonymous.goto(f"{url}/dashboard/queue/")
    assert anonymous.url.startswith(f"{url}/admin/login/")
    assert anonymous.request.get(f"{url}/api/ui/v1/executions/events").status == 401

    context = browser.new_context()
    context.add_cookies([{"name": "sessionid", "value": users["visitor"], "url": url}])
    visitor = context.new_page()
    visitor.goto(f"{url}/dashboard/")
    assert visitor.url.startswith(f"{url}/admin/login/")
    response = visitor.request.get(f"{url}/api/ui/v1/executions/events")
    assert response.status == 401 and response.json()["code"] == "not_authenticated"
    context.close()
