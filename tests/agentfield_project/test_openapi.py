"""The OpenAPI schema describes the API truthfully: Schemathesis runs every check against a real server."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from nodes.auth import issue_key
from tests.processes import ROOT, http

# Bounded: a few examples per operation keeps the whole run well under a minute.
MAX_EXAMPLES = 6


@pytest.mark.django_db
def test_the_schema_lists_the_node_and_execution_routes_with_the_api_key_scheme(api):
    response = api.get("/api/schema/?format=json")
    assert response.status_code == 200
    schema = response.json()
    for route in ("/api/v1/nodes/register", "/api/v1/nodes/{node_id}/heartbeat", "/api/v1/execute/async/{target}"):
        assert route in schema["paths"]
    register = schema["paths"]["/api/v1/nodes/register"]["post"]
    assert set(register["responses"]) >= {"201", "400", "401", "413"}
    scheme = schema["components"]["securitySchemes"]["ApiKeyAuth"]
    assert scheme == {**scheme, "type": "apiKey", "in": "header", "name": "X-API-Key"}
    assert schema["paths"]["/api/v1/health"]["get"].get("security", [{}]) == [{}]  # open to load balancers
    assert {"ApiKeyAuth": []} in schema["paths"]["/api/v1/nodes"]["get"]["security"]


@pytest.mark.django_db
def test_the_docs_page_loads_its_assets_from_this_server(client):
    page = client.get("/api/docs/").content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in page
    assert "https://" not in page and "<script>" not in page  # no CDN, no inline script (CSP)
    script = client.get("/api/docs/?script=")
    assert script.status_code == 200 and "SwaggerUIBundle" in script.content.decode()


@pytest.mark.e2e
def test_schemathesis_finds_no_failure_with_all_checks(launch, tmp_path):
    _, key = issue_key("schemathesis")  # with a key required, `ignored_auth` checks that auth is enforced
    url = launch.server()
    assert http("GET", f"{url}/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui.css")[0] == 200
    args = [
        sys.executable, "-m", "schemathesis.cli", "run", f"{url}/api/schema/",
        "--header", f"X-API-Key: {key}",
        "--checks", "all",
        "--max-examples", str(MAX_EXAMPLES),
        "--seed", "20261123",
        "--generation-database", "none",
        # CONTRACT §8 refuses NUL and lone surrogates in every string: generate neither.
        "--generation-allow-x00", "false",
        "--generation-codec", "utf-8",
        "--request-timeout", "20",
        "--no-color",
    ]  # fmt: skip
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "tests.schemathesis_hooks", "PYTHONPATH": str(ROOT)}
    # cwd: Schemathesis keeps a crash cache in ./.schemathesis, which belongs in no checkout.
    done = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout[-12000:] + done.stderr[-3000:]
    assert "No issues found" in done.stdout or " passed" in done.stdout, done.stdout[-3000:]
