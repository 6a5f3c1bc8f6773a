"""JSON request parsing that turns every malformed body into a clear 400, never a 500."""

from __future__ import annotations

import json
import math
from typing import Any

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

MAX_DEPTH = 64


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # A repeated key would silently keep the last value; say so instead.
    value = dict(pairs)
    if len(value) != len(pairs):
        seen: set[str] = set()
        duplicate = next(key for key, _ in pairs if key in seen or seen.add(key))
        raise ValueError(f"duplicate key {duplicate!r}")
    return value


def loads(raw: bytes | str) -> Any:
    """Decode strict JSON (no NaN/Infinity) whose nesting and strings PostgreSQL can store."""
    try:
        value = json.loads(raw, parse_constant=_reject_constant, object_pairs_hook=_object)
    except RecursionError as exc:
        raise ParseError(f"JSON nested deeper than {MAX_DEPTH} levels") from exc
    except UnicodeDecodeError as exc:
        raise ParseError("request body is not valid UTF-8") from exc
    except ValueError as exc:
        raise ParseError(f"malformed JSON: {exc}") from exc
    check_storable(value)
    return value


def check_storable(value: Any, depth: int = 0) -> None:
    """Raise ParseError for documents too deep, or holding NUL characters or lone surrogates."""
    if depth > MAX_DEPTH:
        raise ParseError(f"JSON nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, str):
        _check_string(value)
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_string(key)
            check_storable(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            check_storable(item, depth + 1)
    elif isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 2**63:
        raise ParseError("integer out of range (64-bit signed)")
    elif isinstance(value, float) and not math.isfinite(value):
        # 1e400 parses to inf without any NaN/Infinity token; PostgreSQL's jsonb refuses it.
        raise ParseError("number out of range (JSON numbers must be finite)")


def _check_string(text: str) -> None:
    if "\x00" in text:
        raise ParseError("NUL characters (\\u0000) are not allowed in JSON strings")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ParseError("lone surrogate in JSON string") from exc


def parse_body(raw: bytes) -> Any:
    """A request's JSON body: {} when there is none (as DRF gives), a 400 for blank or bad JSON."""
    if not raw:
        return {}
    if not raw.strip():
        raise ParseError("request body is empty; expected a JSON object")
    return loads(raw)


class StrictJSONParser(JSONParser):
    """DRF's JSON parser with an explicit depth limit and PostgreSQL-safe strings."""

    def parse(self, stream, media_type=None, parser_context=None):
        return parse_body(b"" if stream is None else stream.read())
