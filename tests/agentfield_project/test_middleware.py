"""A NUL character anywhere in the URL is a 400 before any view (PostgreSQL text cannot hold it)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/api/v1/executions/exec%00x"),
        ("get", "/api/v1/nodes/a%00b"),
        ("post", "/api/v1/nodes/a%00b/heartbeat"),
        ("post", "/api/v1/executions/exec%00x/status"),
        ("post", "/api/v1/executions/exec%00x/cancel"),
        ("post", "/api/v1/executions/exec%00x/logs"),
        ("get", "/api/v1/executions?run_id=a%00b"),
        ("get", "/api/v1/executions?a%00b=1"),
        ("post", "/api/v1/executions/note?execution_id=a%00b"),
        ("post", "/api/v1/execute/async/a%00.b"),
        ("post", "/api/v1/execute/a%00.b"),
    ],
)
def test_a_nul_in_the_url_is_a_json_400(api, method, path):
    if method == "get":
        response = api.get(path)
    else:
        response = api.post(path, {"message": "m", "status": "succeeded"}, format="json")
    assert response.status_code == 400
    assert "NUL" in response.json()["error"]


def test_an_ordinary_url_passes(api):
    assert api.get("/api/v1/executions?run_id=abc").status_code == 200
