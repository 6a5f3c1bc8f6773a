"""A row by its primary key with the SELECT compiled once: the ORM's answer, without compiling per read."""

from __future__ import annotations

import uuid
from unittest import mock

import pytest
from django.db import connection
from django.db.models.sql import compiler
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from agentfield_project.postgres import compiled
from executions import services
from executions.exceptions import ExecutionNotFound
from executions.models import Execution, ExecutionEvent
from tests.factories import make_execution

pytestmark = pytest.mark.django_db

JSON_VALUES = [{"a": [1, 2.5, None, True]}, [], "text", 0, 1.5, True, {"nested": {"é": "ü"}}]


def _fields(instance) -> dict:
    return {field.attname: getattr(instance, field.attname) for field in type(instance)._meta.concrete_fields}


@pytest.mark.parametrize("value", JSON_VALUES, ids=repr)
def test_an_execution_read_equals_the_orm_get_for_each_kind_of_json(value):
    now = timezone.now()
    execution = make_execution(
        input=value,
        context={"headers": value},
        result=value,
        error_details=value,
        lease_token=uuid.uuid4(),
        started_at=now,
        completed_at=now,
        duration_ms=12,
        progress=40,
    )
    read = compiled.get_by_pk(Execution, execution.id)
    assert _fields(read) == _fields(Execution.objects.get(pk=execution.id))
    assert read.input == value and isinstance(read.lease_token, uuid.UUID)
    assert not read._state.adding and read._state.db == "default"  # saved as the ORM's instance would be
    read.progress = 70
    read.save(update_fields=["progress"])  # an UPDATE of the row, as for an instance the ORM read
    assert Execution.objects.get(pk=execution.id).progress == 70


def test_null_columns_read_as_the_orm_reads_them():
    execution = make_execution(result=None, error_details=None, lease_token=None)
    assert _fields(compiled.get_by_pk(Execution, execution.id)) == _fields(Execution.objects.get(pk=execution.id))


def test_an_unknown_key_is_does_not_exist_and_the_api_says_not_found():
    with pytest.raises(Execution.DoesNotExist):
        compiled.get_by_pk(Execution, "exec_unknown")
    with pytest.raises(ExecutionNotFound):
        services.get_execution("exec_unknown")


def test_other_models_and_integer_keys_read_the_same():
    execution = make_execution()
    event = ExecutionEvent.objects.filter(execution_id=execution.id).first() or ExecutionEvent.objects.create(
        id=10**12, execution_id=execution.id, run_id=execution.run_id, node_id=execution.node_id,
        target="t", type="execution.queued", status="queued", data={"k": [1]}, created_at=timezone.now(),
    )  # fmt: skip
    assert _fields(compiled.get_by_pk(ExecutionEvent, event.pk)) == _fields(ExecutionEvent.objects.get(pk=event.pk))


def test_the_statement_is_compiled_once_and_is_one_query_per_read():
    first, second = make_execution(), make_execution()
    compiled.get_by_pk(Execution, first.id)  # compiled here, if no earlier test did
    with mock.patch.object(compiler.SQLCompiler, "as_sql", side_effect=AssertionError("compiled again")):
        with CaptureQueriesContext(connection) as queries:
            assert compiled.get_by_pk(Execution, second.id).id == second.id
            assert services.get_execution(first.id).id == first.id
    assert len(queries) == 2
    assert all(query["sql"].startswith('SELECT "executions_execution"."id"') for query in queries)


def test_many_keys_are_one_query_that_reads_only_the_fields_asked_for():
    first, second = make_execution(priority=3), make_execution(priority=-2)
    fields = ("id", "node_id", "owner_key_id", "submitted_by_id", "priority")
    with CaptureQueriesContext(connection) as queries:
        found = compiled.get_many(Execution, [first.id, "exec_unknown", second.id], fields)
    assert len(queries) == 1 and "= ANY(" in queries[0]["sql"] and '"input"' not in queries[0]["sql"]
    assert set(found) == {first.id, second.id}
    orm = Execution.objects.only(*fields).get(pk=second.id)
    assert found[second.id].get_deferred_fields() == orm.get_deferred_fields()
    assert {name: getattr(found[second.id], name) for name in fields} == {name: getattr(orm, name) for name in fields}
    assert found[first.id].priority == 3
    assert compiled.get_many(Execution, [], fields) == {}
    assert _fields(compiled.get_many(Execution, [first.id])[first.id]) == _fields(Execution.objects.get(pk=first.id))
