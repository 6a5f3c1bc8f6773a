"""The hand-written renderers of the hot routes are pinned to the serializers that document them.

status_body, accepted_body and node_representation build their JSON by hand (they answer the
SDK's polls and registrations, thousands a second); the OpenAPI document describes the same shapes
with DRF serializers. Each renderer's output must have exactly the documented fields and pass the
serializer's own validation, so the two can never drift apart.
"""

from __future__ import annotations

import pytest
from django.utils import timezone

from executions.api import openapi
from executions.api.serializers import accepted_body, status_body
from nodes.api import schema
from nodes.api.serializers import instance_representation, node_representation
from nodes.models import NodeInstance
from tests.factories import make_execution, make_node


def assert_pinned(rendered: dict, serializer_class, optional: tuple[str, ...] = ()) -> None:
    fields = serializer_class().fields
    required = {name for name, field in fields.items() if field.required}
    assert required - set(optional) <= set(rendered), f"missing: {required - set(rendered)}"
    assert set(rendered) <= set(fields), f"undocumented: {set(rendered) - set(fields)}"
    serializer = serializer_class(data=rendered)
    assert serializer.is_valid(), serializer.errors


@pytest.mark.django_db
@pytest.mark.parametrize("state", ["queued", "running", "succeeded", "failed"])
def test_the_status_body_is_the_documented_execution(state, now):
    fields = {"status": state, "started_at": now, "attempt": 1} if state != "queued" else {}
    if state in ("succeeded", "failed"):
        fields |= {"completed_at": now, "duration_ms": 12, "result": {"ok": 1}, "error": "boom" * (state == "failed")}
    assert_pinned(status_body(make_execution(now=now, **fields)), openapi.ExecutionSerializer)


@pytest.mark.django_db
def test_the_accepted_body_is_the_documented_202(now):
    delayed = make_execution(now=now, run_at=now + timezone.timedelta(hours=1))
    assert_pinned(accepted_body(delayed, "bad webhook url"), openapi.AcceptedSerializer)
    assert_pinned(accepted_body(make_execution(now=now)), openapi.AcceptedSerializer)


@pytest.mark.django_db
def test_the_node_and_instance_representations_are_the_documented_node(now):
    node = make_node("shape", now=now)
    assert_pinned(node_representation(node, now), schema.NodeSerializer)
    assert_pinned(instance_representation(NodeInstance.objects.get(node=node), now), schema.NodeInstanceSerializer)
