"""executions.statuses.normalize: the SDK's status vocabulary (pure)."""

from __future__ import annotations

import pytest

from executions import statuses


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("Completed", "succeeded"),
        ("success", "succeeded"),
        ("successful", "succeeded"),
        ("complete", "succeeded"),
        ("done", "succeeded"),
        ("ok", "succeeded"),
        ("FAILED", "failed"),
        ("error", "failed"),
        ("failure", "failed"),
        ("errored", "failed"),
        ("canceled", "cancelled"),
        ("cancel", "cancelled"),
        ("TIMED_OUT", "timeout"),
        ("waiting", "waiting"),
        ("wait", "waiting"),
        ("awaiting_approval", "waiting"),
        ("processing", "running"),
        ("in_progress", "running"),
        ("  running\n", "running"),
        ("pending", "pending"),
        ("queued", "queued"),
    ],
)
def test_aliases_and_case_normalise_to_the_canonical_word(raw, canonical):
    assert statuses.normalize(raw) == canonical


@pytest.mark.parametrize("canonical", statuses.CANONICAL)
def test_every_canonical_status_maps_to_itself(canonical):
    assert statuses.normalize(canonical) == canonical


@pytest.mark.parametrize("raw", ["", "  ", "custom-status", "unknown", "succeed", None, 1, ["ok"], {"s": "ok"}])
def test_anything_else_is_none(raw):
    assert statuses.normalize(raw) is None


def test_terminal_statuses_are_canonical():
    assert set(statuses.TERMINAL) <= set(statuses.CANONICAL)
    assert set(statuses.TERMINAL) == {"succeeded", "failed", "cancelled", "timeout"}
