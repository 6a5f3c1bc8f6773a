"""The console pages as an operator uses them: search, filters, pages, the execution page, its buttons."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib.admin.models import LogEntry
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from executions.models import Approval, Execution, TraceEntry
from nodes.models import Node
from tests.executions.test_dashboard import execution
from tests.factories import make_node
from tests.webhooks.factories import delivery

pytestmark = pytest.mark.django_db


def listed(html: str) -> list[str]:
    return re.findall(r'<tr data-execution-id="([^"]+)"', html)


def aged(execution_id: str, minutes: int, **fields) -> Execution:
    record = execution(execution_id, **fields)
    Execution.objects.filter(id=execution_id).update(created_at=timezone.now() - timedelta(minutes=minutes))
    return record


def test_search_finds_executions_by_the_start_of_their_id_or_run_id(staff_client):
    aged("exec_1700_aaaa", 3, run_id="run_blue")
    aged("exec_1700_bbbb", 2, run_id="run_green")
    aged("exec_1800_cccc", 1, run_id="run_blue_2")
    client = staff_client
    assert listed(client.get("/dashboard/", {"q": "exec_1700"}).content.decode()) == [
        "exec_1700_bbbb",
        "exec_1700_aaaa",
    ]
    assert listed(client.get("/dashboard/", {"q": "run_blue"}).content.decode()) == ["exec_1800_cccc", "exec_1700_aaaa"]
    assert listed(client.get("/dashboard/", {"q": "1700"}).content.decode()) == []  # a prefix, not a substring


def test_filters_by_node_target_and_time_range_combine(staff_client):
    aged("exec_old", 120, node_id="batch", target_name="process_corpus")
    aged("exec_new", 5, node_id="batch", target_name="process_corpus")
    aged("exec_other_name", 5, node_id="batch", target_name="summarize")
    aged("exec_other_node", 5, node_id="billing", target_name="process_corpus")
    client = staff_client
    page = client.get("/dashboard/", {"node": "batch", "target": "batch.process_corpus", "since": "1h"})
    assert listed(page.content.decode()) == ["exec_new"]
    by_name = client.get("/dashboard/", {"target": "process_corpus", "since": "24h"}).content.decode()
    assert set(listed(by_name)) == {"exec_new", "exec_other_node", "exec_old"}


def test_pages_go_older_and_back_newer_without_gaps_or_repeats(staff_client):
    ids = [f"exec_{index:03d}" for index in range(120)]
    for minutes, execution_id in enumerate(reversed(ids)):
        aged(execution_id, minutes)  # exec_119 is the newest
    client = staff_client
    first = client.get("/dashboard/").content.decode()
    older = re.search(r'href="\?([^"]+)" rel="next"', first).group(1).replace("&amp;", "&")
    second = client.get(f"/dashboard/?{older}").content.decode()
    older = re.search(r'href="\?([^"]+)" rel="next"', second).group(1).replace("&amp;", "&")
    third = client.get(f"/dashboard/?{older}").content.decode()
    assert listed(first) + listed(second) + listed(third) == list(reversed(ids))
    assert 'rel="next"' not in third and 'data-live-insert="false"' in third
    newer = re.search(r'href="\?([^"]+)" rel="prev"', third).group(1).replace("&amp;", "&")
    assert listed(client.get(f"/dashboard/?{newer}").content.decode()) == listed(second)


def test_paging_keeps_the_filters(staff_client):
    for index in range(120):
        aged(f"exec_f{index:03d}", index, status="failed" if index % 2 else "queued")
    page = staff_client.get("/dashboard/", {"status": "failed"}).content.decode()
    assert re.search(r'href="\?status=failed&amp;before=[^"]+" rel="next"', page)


def test_the_execution_page_has_a_header_with_a_growing_duration_and_progress(staff_client):
    now = timezone.now()
    aged("exec_run", 10, status="running", attempt=2, progress=40, started_at=now - timedelta(minutes=3))
    html = staff_client.get("/dashboard/executions/exec_run/").content.decode()
    assert re.search(r'data-field="duration" data-started="[^"]+" data-suffix=" so far">3 min \d+ s so far<', html)
    assert '<progress max="100" value="40">' in html and "2 of 5" in html


def test_the_trace_hides_debug_lines_by_default_and_pages_the_rest(staff_client):
    record = execution("exec_t")
    now = timezone.now()
    for index in range(250):
        level = "debug" if index % 2 else "info"
        TraceEntry.objects.create(
            execution_id=record.id, kind="log", level=level, message=f"line {index}:", created_at=now
        )
    client = staff_client
    first = client.get("/dashboard/executions/exec_t/").content.decode()
    assert "Trace (125 at info or above)" in first and "line 0:" in first and "line 1:" not in first
    assert "line 198:" in first and "line 200:" not in first and "page 1 of 2" in first
    second = client.get("/dashboard/executions/exec_t/", {"level": "info", "trace_page": 2}).content.decode()
    assert "line 200:" in second and "line 198:" not in second
    everything = client.get("/dashboard/executions/exec_t/", {"level": "all"}).content.decode()
    assert "Trace (250 entries)" in everything and "line 1:" in everything


def test_children_are_a_tree_and_a_child_names_its_ancestors(staff_client):
    root = aged("exec_root", 5)
    child = aged("exec_child", 4, parent_execution_id=root.id, status="running")
    aged("exec_grandchild", 3, parent_execution_id=child.id, status="failed")
    aged("exec_second_child", 2, parent_execution_id=root.id, status="succeeded")
    client = staff_client
    tree = client.get("/dashboard/executions/exec_root/").content.decode()
    order = re.findall(r'<li style="padding-left: (\d)em" data-execution-id="([^"]+)"', tree)
    assert order == [("1", "exec_child"), ("2", "exec_grandchild"), ("1", "exec_second_child")]
    assert "Children (3)" in tree
    grandchild = client.get("/dashboard/executions/exec_grandchild/").content.decode()
    assert grandchild.index("exec_root") < grandchild.index("exec_child") < grandchild.index("this execution")


@pytest.mark.parametrize(
    ("status", "buttons"),
    [("queued", ["cancel"]), ("running", ["cancel"]), ("failed", ["requeue", "restart"])],
)
def test_the_page_offers_the_buttons_its_status_allows(status, buttons, staff_client):
    execution("exec_b", status=status)
    html = staff_client.get("/dashboard/executions/exec_b/").content.decode()
    assert re.findall(r'name="action" value="(\w+)"', html) == buttons


def test_cancel_from_the_page_cancels_and_is_logged_with_the_staff_user(staff_client):
    execution("exec_c", status="running", node_instance_id="i1")
    client = staff_client
    answer = client.post("/dashboard/executions/exec_c/cancel/", follow=True)
    assert Execution.objects.get(id="exec_c").status == "cancelled"
    assert "staff user 'staff' in the dashboard" in Execution.objects.get(id="exec_c").error
    assert "Cancelled." in answer.content.decode()
    entry = LogEntry.objects.get(object_id="exec_c")
    assert (entry.user.username, entry.change_message) == ("staff", "Cancelled. (the dashboard)")


def test_a_refused_action_says_why_and_changes_nothing(staff_client):
    execution("exec_done", status="succeeded")
    answer = staff_client.post("/dashboard/executions/exec_done/cancel/", follow=True).content.decode()
    assert "cannot change it to cancelled" in answer
    assert Execution.objects.get(id="exec_done").status == "succeeded" and not LogEntry.objects.exists()


def test_approve_and_redeliver_from_the_page(staff_client):
    now = timezone.now()
    waiting = execution("exec_w", status="waiting")
    Approval.objects.create(execution=waiting, approval_request_id="req-1", requested_at=now,
                            expires_at=now + timedelta(hours=1))  # fmt: skip
    client = staff_client
    page = client.get("/dashboard/executions/exec_w/").content.decode()
    assert re.findall(r'name="action" value="(\w+)"', page) == ["cancel", "approve", "reject"]
    client.post("/dashboard/executions/exec_w/approve/")
    approval = Approval.objects.get(approval_request_id="req-1")
    assert (approval.status, approval.decided_by) == ("approved", "staff user 'staff' in the dashboard")

    sent = delivery("http://hooks.example.com/h", now, execution_id="exec_hooked")
    execution("exec_hooked", status="succeeded", webhook_registered=True)
    answer = client.post("/dashboard/executions/exec_hooked/redeliver/", follow=True).content.decode()
    assert f"delivery {sent.id}" in answer
    assert LogEntry.objects.filter(object_id="exec_hooked").count() == 1


def test_actions_take_a_post_from_staff_and_only_go_back_to_this_site(staff_client):
    execution("exec_p", status="queued")
    client = staff_client
    assert client.get("/dashboard/executions/exec_p/cancel/").status_code == 405
    answer = client.post("/dashboard/executions/exec_p/cancel/", {"next": "https://evil.example/"})
    assert answer["Location"] == "/dashboard/executions/exec_p/"
    answer = client.post("/dashboard/executions/exec_p/nonsense/")
    assert answer.status_code == 302 and Execution.objects.get(id="exec_p").status == "cancelled"


def test_the_nodes_page_lists_instances_load_and_recent_failures(staff_client):
    now = timezone.now()
    make_node("batch", reasoners=("process_corpus",))
    execution("exec_q1", node_id="batch")
    execution("exec_r1", node_id="batch", status="running")
    execution("exec_f1", node_id="batch", status="failed", error="agent said <no>", completed_at=now)
    html = staff_client.get("/dashboard/nodes/").content.decode()
    row = re.search(r'<tr data-node-id="batch">(.*?)</tr>', html, re.S).group(1)
    counts = re.findall(r'<td class="num"><a [^>]+>(\d+)</a></td>', row)
    assert counts == ["1", "1", "0", "1"]  # queued, running, waiting, failed in 24 h
    assert "process_corpus" in row and "exec_f1" in row and "agent said &lt;no&gt;" in row
    assert 'class="instance"' in row


def test_the_overview_shows_percentiles_per_target_and_queue_depth_by_node(staff_client):
    now = timezone.now()
    for index, duration in enumerate([100, 200, 300, 400, 10_000]):
        execution(f"exec_d{index}", node_id="batch", target_name="run", status="succeeded",
                  completed_at=now, duration_ms=duration)  # fmt: skip
    execution("exec_x", node_id="batch", target_name="run", status="failed", completed_at=now, duration_ms=50)
    execution("exec_queued", node_id="billing")
    html = staff_client.get("/dashboard/queue/", {"span": "24h"}).content.decode()
    row = re.search(r"batch\.run</a></td>(.*?)</tr>", html, re.S).group(1)
    assert re.findall(r'<td class="num">([^<]+)</td>', row) == ["6", "1", "200 ms", "10.0 s", "10.0 s", "10.0 s"]
    assert "failure rate 16.7 %" in html and "last 24 hours" in html
    assert re.search(r"billing</a></td><td class=\"num\">1</td>", html)


@pytest.mark.parametrize("page", ["/dashboard/", "/dashboard/nodes/", "/dashboard/queue/?span=7d"])
def test_a_page_costs_the_same_queries_for_three_rows_or_thirty(page, staff_client):
    client = staff_client

    def queries_with(count: int) -> int:
        for index in range(count):
            node = f"node{index}"
            make_node(node, reasoners=("run",))
            execution(f"exec_{node}_{count}", node_id=node, status="failed", completed_at=timezone.now(), duration_ms=9)
        with CaptureQueriesContext(connection) as captured:
            assert client.get(page).status_code == 200
        Execution.objects.all().delete()
        Node.objects.all().delete()
        return len(captured)

    assert queries_with(3) == queries_with(30)
