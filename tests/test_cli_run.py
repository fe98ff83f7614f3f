"""``h4tracks run`` through the real entry point: --init, bad pipeline files (one line each,
exit 2, nothing run), and a failing movie that does not stop the others (exit = failures)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml

from h4tracks.cli import main

sys.path.insert(0, str(Path(__file__).parent / "core" / "pipeline"))
from pipeline_movies import pipeline_dict, write_movies


@pytest.fixture(scope="module")
def movies(tmp_path_factory) -> Path:
    return write_movies(tmp_path_factory.mktemp("cli_movies"), n=2, frames=5, size=48, cells=3)


def _write(path: Path, data) -> Path:
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return path


def test_init_writes_a_valid_commented_example(tmp_path, capsys):
    from h4tracks.core.pipeline import load_pipeline

    target = tmp_path / "p.yaml"
    assert main(["run", "--init", str(target)]) == 0
    text = target.read_text()
    assert text.count("#") > 20  # commented
    pipeline = load_pipeline(target)
    assert pipeline.steps.track is not None and pipeline.steps.track.method == "lap"
    capsys.readouterr()
    assert main(["run", "--init", str(target)]) == 2  # never overwritten silently
    assert "exists" in capsys.readouterr().err


@pytest.mark.parametrize(("change", "expected"), [
    ({"steps": {"sgment": {}}}, "unknown step 'sgment'"),
    ({"steps": {"track": {"max_distance": "far"}}}, "steps.track.max_distance must be a number"),
    ({"steps": {"track": {"max_distance": -1}}}, "max_distance must be > 0"),
    ({"steps": {"track": {"method": "nearest"}}}, "steps.track.method must be"),
    ({"steps": {"analyze": {"min_length": 2.5}}}, "steps.analyze.min_length must be a whole"),
    ({"steps": {"segment": {"diamter": 3}}}, "'diamter' is not a segmentation parameter"),
    ({"inputs": {"manifest": "missing.csv"}}, "manifest"),
    ({"inputs": {"glob": "/nonexistent/*.tif"}}, "matches no file"),
    ({"inputs": {}}, "give exactly one of glob, folder and manifest"),
    ({"output": None}, "output"),
    ({"cluster": {"scheduler": "tcp://127.0.0.1:9"}}, "cannot reach the dask scheduler"),
    ({"cluster": {"scheduler": "not a scheduler"}}, "neither an address"),
])
def test_bad_pipeline_files_are_one_line(tmp_path, movies, capsys, change, expected):
    data = pipeline_dict(movies, tmp_path / "out")
    for key, value in change.items():
        if isinstance(value, dict) and key != "inputs":
            data[key] = {**data.get(key, {}), **value} if key != "steps" else value
        elif value is None:
            data.pop(key)
        else:
            data[key] = value
    path = _write(tmp_path / "p.yaml", data)
    assert main(["-q", "run", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert expected in err, err
    assert len(err.splitlines()) == 1, err
    assert not (tmp_path / "out" / "projects").exists()  # nothing ran


@pytest.mark.parametrize(("text", "expected"), [
    ("inputs: [unclosed", "not valid YAML at line 1"),
    ("- just\n- a list\n", "a pipeline is a mapping"),
])
def test_unreadable_files_are_one_line(tmp_path, capsys, text, expected):
    path = _write(tmp_path / "p.yaml", text)
    assert main(["-q", "run", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert expected in err and len(err.splitlines()) == 1, err
    assert main(["-q", "run", str(tmp_path / "nope.yaml")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_a_failing_movie_is_one_line_and_the_exit_code(tmp_path, movies, capsys):
    import numpy as np
    import tifffile

    folder = movies.parent
    tifffile.imwrite(tmp_path / "wrong.tif", np.zeros((2, 10, 10), np.uint16))
    manifest = tmp_path / "movies.csv"
    manifest.write_text(
        "name,image,labels,condition\n"
        f"a,{folder / 'm0.tif'},{folder / 'm0_labels.tif'},slow\n"
        f"bad,{folder / 'm0.tif'},{tmp_path / 'wrong.tif'},slow\n"  # labels of another shape
        f"b,{folder / 'm1.tif'},{folder / 'm1_labels.tif'},fast\n")
    data = pipeline_dict(manifest, tmp_path / "out")
    data["cluster"] = {"scheduler": "sequential"}
    path = _write(tmp_path / "p.yaml", data)
    assert main(["-q", "run", str(path)]) == 1  # the number of failed movies
    captured = capsys.readouterr()
    failed = [line for line in captured.err.splitlines() if line.startswith("h4tracks: ")]
    assert len(failed) == 1 and failed[0].startswith("h4tracks: bad: "), captured.err
    assert "ran 3 movie(s)" in captured.out and "2 ok, 1 failed" in captured.out
    assert (tmp_path / "out" / "movies" / "b" / "tracks.csv").is_file()
