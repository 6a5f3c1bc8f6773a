"""nodes/api/serializers.py: the heartbeat body is read with HeartbeatSerializer's own fields."""

from __future__ import annotations

import pytest

from nodes.api.serializers import HeartbeatSerializer, beat_fields

BODIES = [
    {},
    {"status": "ready"},
    {"status": "  degraded  "},  # trimmed, as the CharField trims
    {"status": "", "instance_id": ""},
    {"instance_id": "  spaced  "},  # kept as sent (trim_whitespace=False)
    {"status": "ready", "instance_id": "i-1", "extra": [1, 2]},
    {"status": 7},  # a number is a string to a CharField
    {"status": True},  # a boolean is not
    {"status": None},
    {"status": {"nested": 1}},
    {"status": "x" * 33},  # over max_length: the whole body is unusable
    {"instance_id": "i" * 256},
    {"status": "ready", "instance_id": ["a"]},
    [],
    "ready",
    None,
]


@pytest.mark.parametrize("body", BODIES)
def test_beat_fields_says_what_the_serializer_says(body):
    serializer = HeartbeatSerializer(data=body if isinstance(body, dict) else {})
    expected = (
        (serializer.validated_data.get("status"), serializer.validated_data.get("instance_id"))
        if serializer.is_valid()
        else (None, None)
    )
    assert beat_fields(body) == expected
