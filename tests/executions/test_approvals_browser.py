"""Approve a paused SDK reasoner from the admin's Approvals inbox in headless Chromium."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission, User

from tests.chromium import headless, log_in
from tests.processes import ARTIFACTS, http, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.browser]


@pytest.fixture
def approver_browser(db_url):
    """An approver (staff, allowed to view and decide approvals only), then Chromium."""
    approver = User.objects.create_user("staff", password="browser-password", is_staff=True)
    approver.user_permissions.add(*Permission.objects.filter(codename__in=["view_approval", "change_approval"]))
    with headless() as chromium:
        yield chromium


def test_staff_approve_a_paused_reasoner_in_the_admin_and_it_goes_on(launch, approver_browser):
    url = launch.server()
    launch.dispatcher()
    launch.agent("echo_agent.py", url, NODE_ID="echo")

    def registered() -> bool:
        code, body, _ = http("GET", f"{url}/api/v1/nodes/echo")
        return code == 200 and body["health_status"] == "active"

    wait_until(registered, timeout=60, message="agent registration")
    _, accepted, _ = http("POST", f"{url}/api/v1/execute/async/echo.gated", {"input": {"request_id": "req-ui"}})
    execution_id = accepted["execution_id"]
    status = lambda: http("GET", f"{url}/api/v1/executions/{execution_id}")[1]  # noqa: E731
    wait_until(lambda: status()["status"] == "waiting", timeout=60, message="the pause")

    page = approver_browser.new_page()
    log_in(page, url, "staff", next_path="/admin/executions/approval/")
    page.wait_for_url(f"{url}/admin/executions/approval/")
    row = page.locator("#result_list tbody tr").first
    assert "req-ui" in row.text_content() and "Pending" in row.text_content()
    row.locator("a").first.click()
    page.select_option("#id_decision", "approved")
    page.fill("#id_feedback", "looks right")
    page.click("input[name=_save]")
    page.wait_for_url(f"{url}/admin/executions/approval/")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "approvals-inbox.png"), full_page=True)

    done = wait_until(lambda: (s := status())["status"] == "succeeded" and s, timeout=60, message="the reasoner")
    assert done["result"] == {"decision": "approved", "feedback": "looks right"}
    approval = http("GET", f"{url}/api/v1/agents/echo/executions/{execution_id}/approval-status")[1]
    assert approval["decided_by"] == "staff user 'staff' in the admin"
