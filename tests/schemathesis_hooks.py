"""Schemathesis hooks (SCHEMATHESIS_HOOKS): keep generated bodies within the documented JSON limits.

CONTRACT §8 refuses, for every body, integers beyond 64 bits and non-finite floats (no JSON
Schema can say so for free-form objects); these hooks stop Schemathesis from calling such a
body "schema-valid". NUL and lone surrogates are excluded by the CLI options instead.
"""

from __future__ import annotations

import math
from typing import Any

import schemathesis


def _storable(value: Any) -> bool:
    if isinstance(value, bool):
        return True
    if isinstance(value, int):
        return abs(value) < 2**63
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(_storable(item) for item in value.values())
    if isinstance(value, list):
        return all(_storable(item) for item in value)
    return True


@schemathesis.hook
def filter_body(context, body) -> bool:
    return _storable(body)


@schemathesis.hook
def filter_query(context, query) -> bool:
    return _storable(query)


SCOPE_HEADERS = {"workflow": "X-Workflow-ID", "session": "X-Session-ID", "actor": "X-Actor-ID"}


REGISTRATION_PATHS = ("/api/v1/nodes", "/api/v1/nodes/register")


@schemathesis.hook
def map_case(context, case):
    """Fill in what OpenAPI cannot state, so a schema-valid request is a valid one.

    - A `workflow`/`session`/`actor` memory scope needs its id header: send one when it is missing.
    - A node's `base_url` host must resolve to an address agents may use (the server's
      AGENTFIELD_AGENT_ALLOWED_CIDRS): the generated host is replaced by a loopback address and
      the generated path kept.
    """
    if case.path in REGISTRATION_PATHS and case.method == "POST" and isinstance(case.body, dict):
        url = case.body.get("base_url")
        if isinstance(url, str) and "://" in url:
            rest = url.split("://", 1)[1]
            path = rest[rest.index("/") :] if "/" in rest else ""
            case.body = {**case.body, "base_url": "http://127.0.0.1:9" + path}
        return case
    if not case.path.startswith("/api/v1/memory/"):
        return case
    scope = case.query.get("scope") if case.query else None
    if isinstance(case.body, dict):
        scope = case.body.get("scope", scope)
    header = SCOPE_HEADERS.get(scope) if isinstance(scope, str) else None
    if header:
        case.headers = {**(case.headers or {})}
        if not str(case.headers.get(header, "")).strip():
            case.headers[header] = "run-schemathesis"
    return case


@schemathesis.hook
def filter_case(context, case) -> bool:
    """Skip memory calls with a scope header over 255 characters: refused only when that scope is used."""
    if not case.path.startswith("/api/v1/memory/"):
        return True
    return all(len(str((case.headers or {}).get(header, ""))) <= 255 for header in SCOPE_HEADERS.values())
