"""Core budget parsing."""

import pytest

from h4tracks.core import compute
from h4tracks.core.compute import core_budget


@pytest.fixture
def eight_cores(monkeypatch):
    monkeypatch.setattr(compute, "available_cores", lambda: 8)


def test_modes(eight_cores):
    assert core_budget("40%") == 3
    assert core_budget("80%") == 6
    assert core_budget(None) == 3
    assert core_budget("80 %") == 6
    assert core_budget(2) == 2
    assert core_budget("4") == 4
    assert core_budget(64) == 8  # capped at what the machine has
    assert core_budget(0.5) == 4


def test_at_least_one_core(monkeypatch):
    monkeypatch.setattr(compute, "available_cores", lambda: 1)
    assert core_budget("40%") == 1


@pytest.mark.parametrize("bad", ["lots", "150%", "0%", 0, -2])
def test_bad_modes(eight_cores, bad):
    with pytest.raises(ValueError):
        core_budget(bad)


def test_real_machine():
    assert 1 <= core_budget("80%") <= compute.available_cores()
