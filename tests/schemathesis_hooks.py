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
