"""Compute modes round to the nearest whole core (issue 20: 1 and 2 cores on 2 cores)."""

import pytest

from h4tracks.core import compute
from h4tracks.core.compute import MODES, core_budget


@pytest.mark.parametrize(("cores", "expected"), [
    (1, {"40%": 1, "80%": 1}),
    (2, {"40%": 1, "80%": 2}),
    (3, {"40%": 1, "80%": 2}),
    (4, {"40%": 2, "80%": 3}),
    (8, {"40%": 3, "80%": 6}),
    (16, {"40%": 6, "80%": 13}),
])
def test_modes_round_to_nearest(monkeypatch, cores, expected):
    monkeypatch.setattr(compute, "available_cores", lambda: cores)
    assert {mode: core_budget(mode) for mode in MODES} == expected


def test_two_cores_give_distinct_modes(monkeypatch):
    monkeypatch.setattr(compute, "available_cores", lambda: 2)
    assert core_budget("40%") == 1 and core_budget("80%") == 2
    assert core_budget(0.75) == 2 and core_budget("25%") == 1  # half up, at least 1
    assert core_budget("100%") == 2
