"""Every API error is JSON: unknown routes and server errors under /api/ included."""

from __future__ import annotations

import pytest
from django.test import RequestFactory

from agentfield_project.exceptions import server_error

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("path", ["/api/v1/nothing-here", "/api/v1/vc/verify", "/api/v1/executions/a/b/c"])
def test_an_unknown_api_route_is_a_json_404(api, path):
    response = api.post(path, {}, format="json")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("application/json")
    assert path in response.json()["error"]


def test_an_unknown_page_outside_the_api_is_not_json(client):
    response = client.get("/no-such-page")
    assert response.status_code == 404
    assert not response["Content-Type"].startswith("application/json")


def test_a_server_error_under_the_api_is_json():
    response = server_error(RequestFactory().get("/api/v1/executions"))
    assert response.status_code == 500
    assert response["Content-Type"].startswith("application/json")
    assert b"internal server error" in response.content
