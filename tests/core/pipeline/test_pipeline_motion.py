"""The run's pooled motion (rose and MSD figures by group): the units the figures are drawn
in are those most movies share, so one uncalibrated movie cannot leave the calibrated ones out,
and the movies left out are named in the log."""

from __future__ import annotations

import logging
from types import SimpleNamespace

from h4tracks.core.pipeline.motion import pool_groups, write_motion
from h4tracks.core.project import Metadata
from h4tracks.testing.walks import random_walks


def _motion(folder, name: str, seed: int, **calibration):
    """The motion file of a movie with ``calibration`` (pixel_size, frame_interval)."""
    project = SimpleNamespace(metadata=Metadata(**calibration),
                              graph=random_walks(seed, n_tracks=3, n=6))
    return name, write_motion(project, folder / f"{name}.npz")


CALIBRATED = {"pixel_size": 0.65, "frame_interval": 5.0, "time_unit": "min"}


def test_an_uncalibrated_movie_first_does_not_leave_the_calibrated_ones_out(tmp_path, caplog):
    movies = [_motion(tmp_path, "a_uncal", 0),  # px / frame, first in sorted order
              _motion(tmp_path, "b_cal", 1, **CALIBRATED),
              _motion(tmp_path, "c_cal", 2, **CALIBRATED)]
    with caplog.at_level(logging.WARNING, logger="h4tracks.core.pipeline.motion"):
        groups, left_out = pool_groups({"ctrl": movies})
    assert left_out == ["a_uncal"]
    motion = groups["ctrl"]
    assert motion.movies == ["b_cal", "c_cal"]
    assert (motion.msd.length_unit, motion.msd.time_unit) == ("µm", "min")
    assert motion.trajectories.length_unit == "µm"
    assert motion.trajectories.n_tracks == 6
    # the log names the movie left out and the units it was in
    assert "a_uncal" in caplog.text and "px" in caplog.text


def test_the_units_are_shared_by_all_groups(tmp_path):
    # the figures draw every group on one scale: a group whose only movie is in other units
    # than most movies of the run is left out, not drawn in px next to µm
    groups, left_out = pool_groups({
        "a": [_motion(tmp_path, "m0", 0)],
        "b": [_motion(tmp_path, "m1", 1, **CALIBRATED), _motion(tmp_path, "m2", 2, **CALIBRATED)],
    })
    assert left_out == ["m0"] and list(groups) == ["b"]


def test_a_tie_prefers_the_calibrated_units(tmp_path):
    groups, left_out = pool_groups({"g": [
        _motion(tmp_path, "m0", 0),
        _motion(tmp_path, "m1", 1, pixel_size=0.5),  # µm / frame: calibrated in part
        _motion(tmp_path, "m2", 2, **CALIBRATED),
    ]})
    assert left_out == ["m0", "m1"] and groups["g"].movies == ["m2"]
    # equally calibrated: the first in order wins
    groups, left_out = pool_groups({"g": [
        _motion(tmp_path, "n0", 0, pixel_size=0.5, frame_interval=2.0, time_unit="s"),
        _motion(tmp_path, "n1", 1, **CALIBRATED),
    ]})
    assert left_out == ["n1"] and groups["g"].movies == ["n0"]


def test_movies_in_one_unit_are_all_pooled(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="h4tracks.core.pipeline.motion"):
        groups, left_out = pool_groups({"g": [_motion(tmp_path, "m0", 0),
                                              _motion(tmp_path, "m1", 1)]})
    assert left_out == [] and groups["g"].movies == ["m0", "m1"]
    assert (groups["g"].msd.length_unit, groups["g"].msd.time_unit) == ("px", "frame")
    assert caplog.text == ""
