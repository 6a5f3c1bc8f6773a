"""Pure parts of the stream: the resume point, filters and frame encoding."""

from __future__ import annotations

import json

import pytest
from django.http import QueryDict

from executions.sse import BadRequest, frame, parse_filters, parse_last_event_id


def test_last_event_id_comes_from_the_header_first_then_the_query():
    assert parse_last_event_id("7", "3") == 7
    assert parse_last_event_id(None, "3") == 3
    assert parse_last_event_id(None, None) is None
    assert parse_last_event_id("", None) is None
    assert parse_last_event_id(" 42 ", None) == 42
    assert parse_last_event_id(str(2**63 - 1), None) == 2**63 - 1


@pytest.mark.parametrize("value", ["abc", "-1", "1e9999", str(2**63), str(2**64), "5, 6", "5\r\n6", "0x1", "+5", "٣"])
def test_a_malformed_last_event_id_is_refused(value):
    with pytest.raises(BadRequest):
        parse_last_event_id(value, None)


def test_filters_accept_one_value_each_and_alias_workflow_id():
    assert parse_filters(QueryDict("execution_id=exec_1&workflow_id=run_1&x=1")) == {
        "execution_id": "exec_1",
        "run_id": "run_1",
    }
    for query in ("target=a&target=b", "run_id=", "execution_id=" + "x" * 513, "execution_id=a%00b"):
        with pytest.raises(BadRequest):
            parse_filters(QueryDict(query))


def test_a_frame_is_one_data_line_even_when_a_value_holds_newlines():
    encoded = frame({"type": "execution_failed", "error": "boom\n\nevent: x\ndata: y"}, event_id=12, retry_ms=None)
    text = encoded.decode()
    assert text.endswith("\n\n") and text.count("\n\n") == 1
    lines = text.rstrip("\n").split("\n")
    assert lines[0] == "id: 12" and lines[1].startswith("data: ") and len(lines) == 2
    assert json.loads(lines[1].removeprefix("data: "))["error"] == "boom\n\nevent: x\ndata: y"


def test_the_connected_frame_carries_no_id():
    assert frame({"type": "connected"}, retry_ms=3000) == b'data: {"type":"connected"}\nretry: 3000\n\n'
