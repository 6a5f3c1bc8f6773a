"""The LISTEN connections' settings: Django's database, or the way around a pooler when one is named."""

from __future__ import annotations

from django.db import connection

from agentfield_project.postgres.listen import listen_params


def test_by_default_a_listen_connection_goes_where_django_goes_without_its_cursor_classes():
    params = listen_params()
    django_params = connection.get_connection_params()
    assert (params["host"], params.get("port"), params["dbname"]) == (
        django_params["host"],
        django_params.get("port"),
        django_params["dbname"],
    )
    assert "cursor_factory" not in params and "context" not in params and "pool" not in params
    assert params["prepare_threshold"] is None  # nothing prepared: a pooler may not keep it
    assert params["keepalives"] == 1 and params["connect_timeout"] == 10


def test_a_listen_database_url_takes_it_around_the_pooler(settings):
    settings.AGENTFIELD_LISTEN_DATABASE = {
        "NAME": "direct", "USER": "listener", "PASSWORD": "", "HOST": "10.0.0.5", "PORT": 5433,
        "OPTIONS": {"sslmode": "require"},
    }  # fmt: skip
    params = listen_params()
    assert (params["host"], params["port"], params["dbname"], params["user"]) == (
        "10.0.0.5",
        5433,
        "direct",
        "listener",
    )
    assert params["sslmode"] == "require"
    assert params["keepalives"] == 1  # the rest still comes from Django's settings
