"""Rows by primary key, read with the SELECT that the ORM compiles for them, compiled once.

Django compiles a query's SQL on every execution: for `get(pk=...)` of an execution (35 columns)
that is the SELECT list, each column quoted and formatted, and the converter of each, and it was
about 60% of the read's CPU: 0.25 of 0.4 ms (the SDK's status poll and status callback read an
execution this way; bench scenario 11). The statement does not depend on the key, which is its one
parameter, so it is compiled once per model and database and then executed with each key. The
answer is the ORM's: the same SQL, the same converters (JSONField's decoding among them) and the
instance `Model.from_db` builds, as `get()` builds it. `get_many` reads several keys in one
query the same way (the ORM's `only(...).filter(pk__in=...)`, its list of keys one array parameter),
and `get_by_pk_on_loop` runs the same statement on the event loop's own connection.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from django.db import connections, models, router

from agentfield_project.postgres import loop_db

M = TypeVar("M", bound=models.Model)


@dataclass(frozen=True)
class Select:
    sql: str
    field_names: tuple[str, ...]  # the row's columns, in order, as `Model.from_db` takes them
    converters: tuple[tuple[int, tuple[Callable, ...], Any], ...]  # (column, its converters, its expression)


@functools.cache
def _select(model: type[models.Model], alias: str, fields: tuple[str, ...] | None, many: bool) -> Select:
    sample = model._meta.pk.to_python("0")
    # What get() (or filter(pk__in=...)) runs: the default manager's filter, without the model's ordering.
    lookup = {"pk__in": [sample]} if many else {"pk": sample}
    queryset = model._default_manager.db_manager(alias).filter(**lookup).order_by()
    queryset = queryset if fields is None else queryset.only(*fields)
    compiler = queryset.query.get_compiler(alias)
    sql, params = compiler.as_sql()
    if list(params) != [sample] or (many and not sql.endswith(" IN (%s)")):  # the key must be the one parameter
        raise TypeError(f"{model.__name__}: the key is not the only parameter of {sql!r}: {params!r}")
    if many:
        sql = sql.removesuffix(" IN (%s)") + " = ANY(%s)"  # any number of keys, one statement
    names = tuple(column.target.attname for column, _, _ in compiler.select)
    converters = compiler.get_converters([column for column, _, _ in compiler.select])
    return Select(sql, names, tuple((index, tuple(convs), expr) for index, (convs, expr) in converters.items()))


def get_by_pk(model: type[M], pk: Any) -> M:
    """The instance of `model` whose primary key is `pk` (Model.DoesNotExist if there is none)."""
    found = _read(model, None, False, pk)
    if not found:
        raise model.DoesNotExist(f"{model._meta.object_name} matching query does not exist.")
    return found[0]


def get_many(model: type[M], pks: list[Any], fields: tuple[str, ...] | None = None) -> dict[Any, M]:
    """{key: instance} of those of `pks` that exist, with only `fields` loaded (all when None), in one query."""
    return {instance.pk: instance for instance in _read(model, fields, True, list(pks))} if pks else {}


async def get_by_pk_on_loop(model: type[M], pk: Any) -> M | None:
    """`get_by_pk` on an event-loop connection (loop_db.py): the instance, or None when there is none
    or the loop could not read it now (the thread path then answers, its 404 included)."""
    alias = router.db_for_read(model)
    select = _select(model, alias, None, False)
    rows = await loop_db.database.fetchall(select.sql, [pk])
    return _instances(model, alias, select, rows)[0] if rows else None


def _read(model: type[M], fields: tuple[str, ...] | None, many: bool, key: Any) -> list[M]:
    alias = router.db_for_read(model)
    select = _select(model, alias, fields, many)
    with connections[alias].cursor() as cursor:
        cursor.execute(select.sql, [key])
        rows = cursor.fetchall()
    return _instances(model, alias, select, rows)


def _instances(model: type[M], alias: str, select: Select, rows: list[tuple]) -> list[M]:
    connection = connections[alias]
    instances = []
    for row in rows:
        values = list(row)
        for index, convs, expression in select.converters:
            for convert in convs:
                values[index] = convert(values[index], expression, connection)
        instances.append(model.from_db(alias, select.field_names, values))
    return instances
