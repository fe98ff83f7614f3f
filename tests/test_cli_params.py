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
    assert "global only; default local" in text
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


@pytest.mark.parametrize(("command", "frames"), [("synth", 40), ("demo", 20)])
def test_movie_flags_come_from_the_synthetic_config(command, frames):
    """synth and demo keep their flag names (--frames, --size, --cells, --seed) and their own
    defaults; help and bounds come from SyntheticConfig, --size N is an N x N frame."""
    text = _help(command)
    for flag in ("--frames N", "--size N", "--cells N", "--seed N"):
        assert flag in text
    assert f"default {frames})" in text and "(default 15)" in text and "(default 256)" in text
    assert SyntheticConfig.model_fields["n_cells"].description.rstrip(".") in text
    head = ["synth", "-o", "out"] if command == "synth" else ["demo"]
    args = build_parser().parse_args(head)
    assert SyntheticConfig(**model_values(args, SyntheticConfig)) == SyntheticConfig(
        n_frames=frames, shape=(256, 256), n_cells=15, seed=0)
    args = build_parser().parse_args([*head, "--size", "96", "--frames", "4", "--cells", "3",
                                      "--seed", "7"])
    assert SyntheticConfig(**model_values(args, SyntheticConfig)) == SyntheticConfig(
        n_frames=4, shape=(96, 96), n_cells=3, seed=7)


@pytest.mark.parametrize(("argv", "line"), [
    (["synth", "-o", "out", "--size", "8"],
     "--size must be at least 16 pixels on each side, not 8x8"),
    (["synth", "-o", "out", "--cells", "0"], "--cells must be >= 1 (got 0)"),
    (["demo", "--frames", "0"], "--frames must be >= 1 (got 0)"),
])
def test_bad_movie_values_name_the_flag_and_write_nothing(tmp_path, monkeypatch, capsys,
                                                          argv, line):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    assert capsys.readouterr().err.strip() == f"h4tracks: error: {line}"
    assert list(tmp_path.iterdir()) == []


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
