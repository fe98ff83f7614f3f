"""The command line's parameter flags are generated from the parameter models: names,
defaults, bounds and help are written once (in h4tracks.core.parameters)."""

from __future__ import annotations

import argparse

import pytest
import tifffile

from h4tracks.cli import build_parser, main
from h4tracks.cli.model_args import add_model_options, model_values
from h4tracks.core.parameters import GlobalParams, LapParams, OverlapParams, SegmentParams
from h4tracks.core.project import Project
from h4tracks.core.store import open_project, save_project
from h4tracks.datasets.synthetic import SyntheticConfig, make_movie


def _help(command: str) -> str:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return " ".join(sub.choices[command].format_help().split())


def test_every_tracking_field_has_a_flag_with_the_models_default():
    text = _help("track")
    for model in (LapParams, OverlapParams, GlobalParams):
        for name in model.model_fields:
            if name != "weights":
                assert "--" + name.replace("_", "-") in text, name
    # the default printed is the model's (the hand-written help once said "local")
    assert "global only; default drift" in text
    assert "lap: default 45; global: default auto" in text
    assert "--divisions | --no-divisions" in text


def test_segmentation_flags_come_from_the_model():
    text = _help("segment")
    for name in ("diameter", "flow_threshold", "cellprob_threshold", "min_size"):
        assert "--" + name.replace("_", "-") in text
    assert SegmentParams.model_fields["cellprob_threshold"].description.split(":")[0] in text


def test_values_given_and_foreign_flags():
    parser = argparse.ArgumentParser()
    models = {"lap": LapParams, "overlap": OverlapParams}
    options = add_model_options(parser, models)
    args = parser.parse_args(["--max-distance", "12", "--no-divisions"])
    assert model_values(args, LapParams, options=options) == {"max_distance": 12.0,
                                                              "divisions": False}
    with pytest.raises(Exception, match="--max-distance is not an option of --method overlap"):
        model_values(args, OverlapParams, options=options, label="--method overlap")
    assert model_values(parser.parse_args([]), LapParams, options=options) == {}


@pytest.fixture
def tracked(tmp_path, monkeypatch):
    monkeypatch.setenv("H4TRACKS_CONFIG_DIR", str(tmp_path / "cfg"))
    movie = make_movie(SyntheticConfig(n_frames=6, shape=(64, 64), n_cells=5, seed=1))
    tifffile.imwrite(tmp_path / "img.tif", movie.image)
    return save_project(Project(movie.image, movie.labels), tmp_path / "P.zarr")


def test_no_divisions_turns_off_the_overlap_trackers_default(tracked, capsys):
    assert main(["track", str(tracked), "--method", "overlap", "--no-divisions"]) == 0
    params = open_project(tracked).metadata.provenance[-1]["params"]
    assert params["method"] == "overlap" and params["divisions"] is False
    assert main(["track", str(tracked), "--method", "overlap"]) == 0
    assert open_project(tracked).metadata.provenance[-1]["params"]["divisions"] is True


def test_a_flag_of_another_method_is_one_line(tracked, capsys):
    assert main(["track", str(tracked), "--method", "overlap", "--window", "5"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "h4tracks: error: --window is not an option of --method overlap"
