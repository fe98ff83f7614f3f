"""Command-line tests: real subprocesses for the console script, in-process for the rest."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tifffile

from h4tracks.cli import main
from h4tracks.core.segmentation.models import ModelRegistry
from h4tracks.core.store import open_project
from h4tracks.datasets.synthetic import SyntheticConfig, make_movie


@pytest.fixture(scope="module")
def movie():
    return make_movie(SyntheticConfig(n_frames=5, shape=(48, 64), n_cells=3, seed=2))


@pytest.fixture
def files(tmp_path, movie):
    tifffile.imwrite(tmp_path / "img.tif", movie.image, imagej=True,
                     resolution=(1 / 0.5, 1 / 0.5),
                     metadata={"axes": "TYX", "unit": "um", "finterval": 10})
    tifffile.imwrite(tmp_path / "lab.tif", movie.labels.astype(np.uint16))
    return tmp_path


def test_console_script_new_and_info(files, movie):
    exe = shutil.which("h4tracks", path=os.path.dirname(sys.executable)) or "h4tracks"
    out = files / "p.zarr"
    r = subprocess.run([exe, "new", str(files / "img.tif"), "--labels", str(files / "lab.tif"),
                        "-o", str(out)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "created" in r.stdout
    p = open_project(out)
    np.testing.assert_array_equal(np.asarray(p.labels), movie.labels)
    np.testing.assert_array_equal(p.image[:], movie.image)
    assert p.metadata.pixel_size == pytest.approx(0.5)
    assert p.metadata.frame_interval == pytest.approx(10)
    assert p.metadata.provenance[0]["step"] == "import"
    # imported labels are an automatic result: kept as the snapshot to score curation against
    assert p.auto is not None and p.auto.info["step"] == "import"
    np.testing.assert_array_equal(np.asarray(p.auto.labels), movie.labels)
    r = subprocess.run([exe, "info", str(out)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "(5, 48, 64)" in r.stdout and "0.5 µm" in r.stdout


@pytest.mark.parametrize(
    ("make_args", "needle"),
    [
        (lambda d: ["new", str(d / "missing.tif"), "-o", str(d / "x.zarr")], "missing.tif"),
        (lambda d: ["new", str(d / "img.tif"), "--labels", str(d / "bad.tif"), "-o",
                    str(d / "x.zarr")], "shape"),
        (lambda d: ["new", str(d / "img.tif"), "--labels", str(d / "float.tif"), "-o",
                    str(d / "x.zarr")], "float"),
        (lambda d: ["new", str(d / "img.tif"), "--labels", str(d / "neg.tif"), "-o",
                    str(d / "x.zarr")], "negative"),
        (lambda d: ["new", str(d / "corrupt.tif"), "-o", str(d / "x.zarr")], "corrupt.tif"),
        (lambda d: ["info", str(d / "plain.zarr")], "not an h4tracks project"),
        (lambda d: ["info", str(d / "nothing.zarr")], "no such project"),
    ],
)
def test_bad_input_one_line_error_nothing_written(files, movie, capsys, make_args, needle):
    tifffile.imwrite(files / "bad.tif", movie.labels[:, :10])
    tifffile.imwrite(files / "float.tif", movie.labels.astype(np.float32))
    neg = movie.labels.astype(np.int32)
    neg[0, 0, 0] = -1
    tifffile.imwrite(files / "neg.tif", neg)
    (files / "corrupt.tif").write_bytes(b"II*\x00garbage" * 10)
    import zarr

    zarr.open_group(files / "plain.zarr", mode="w")
    before = sorted(p.name for p in files.iterdir())
    code = main(make_args(files))
    err = capsys.readouterr().err
    assert code != 0
    assert err.count("\n") == 1 and err.startswith("h4tracks: error:"), err
    assert needle in err
    assert "Traceback" not in err
    assert sorted(p.name for p in files.iterdir()) == before  # nothing written or left over


def test_new_refuses_to_replace_existing_output(files, capsys):
    out = files / "p.zarr"
    assert main(["new", str(files / "img.tif"), "-o", str(out)]) == 0
    assert main(["new", str(files / "img.tif"), "-o", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["new", str(files / "img.tif"), "-o", str(out), "--overwrite"]) == 0
    keep = files / "data.zarr"
    keep.mkdir()
    (keep / "x").write_text("precious")
    assert main(["new", str(files / "img.tif"), "-o", str(keep), "--overwrite"]) == 2
    assert (keep / "x").read_text() == "precious"


def test_debug_shows_traceback(files):
    with pytest.raises(Exception, match="no such project"):
        main(["--debug", "info", str(files / "nothing.zarr")])


def test_synth_writes_movie_and_ctc_ground_truth(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["synth", "-o", str(out), "--frames", "4", "--size", "64", "--cells", "3"]) == 0
    assert (out / "image.tif").exists() and (out / "labels.tif").exists()
    assert (out / "ctc" / "01_GT" / "TRA" / "man_track.txt").exists()
    assert main(["new", str(out / "image.tif"), "--labels", str(out / "labels.tif"),
                 "-o", str(tmp_path / "d.zarr")]) == 0
    assert main(["synth", "-o", str(out)]) == 2  # not empty


def test_segment_image_creates_project_and_segments(files, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("H4TRACKS_CONFIG_DIR", str(tmp_path / "cfg"))
    code = main(["segment", str(files / "img.tif"), "--frames", "1:3", "--cores", "1"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "created project" in out and "segmented 2 frame(s)" in out
    p = open_project(files / "img.zarr")
    labels = np.asarray(p.labels)
    assert labels[1:3].any() and not labels[[0, 3, 4]].any()  # only the chosen frames
    assert p.metadata.provenance[-1]["step"] == "segment" and p.auto is not None
    # existing project: re-segment one frame with explicit parameters
    assert main(["segment", str(files / "img.zarr"), "--frames", "0", "--diameter", "12",
                 "--min-size", "5"]) == 0
    p = open_project(files / "img.zarr")
    assert p.metadata.provenance[-1]["params"]["diameter"] == 12.0
    assert np.asarray(p.labels)[0].any()


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--model", "no-such-model"], "Unknown model 'no-such-model'"),
        (["--frames", "7:9"], "select no frame"),
        (["--model", "/no/such/file.pth"], "does not exist"),
    ],
)
def test_segment_errors_are_one_line(files, capsys, monkeypatch, tmp_path, argv, needle):
    monkeypatch.setenv("H4TRACKS_CONFIG_DIR", str(tmp_path / "cfg"))
    assert main(["new", str(files / "img.tif"), "-o", str(files / "p.zarr")]) == 0
    capsys.readouterr()
    assert main(["segment", str(files / "p.zarr"), *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and "\n" not in err
    assert open_project(files / "p.zarr").labels is None  # nothing written


def test_models_list_add_remove(capsys, monkeypatch, tmp_path):
    from h4tracks.core.segmentation.models import demo_model_file

    monkeypatch.setenv("H4TRACKS_CONFIG_DIR", str(tmp_path / "cfg"))
    assert main(["models", "--add", "mine", str(demo_model_file()), "--diameter", "20"]) == 0
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "h4tracks-demo" in out and "cyto3" in out and "mine" in out
    assert main(["models", "--remove", "mine"]) == 0
    assert main(["models", "--remove", "mine"]) == 2


def test_export_ctc(files, capsys, tmp_path):
    assert main(["new", str(files / "img.tif"), "--labels", str(files / "lab.tif"),
                 "-o", str(files / "p.zarr")]) == 0
    out = tmp_path / "ctc"
    assert main(["export", str(files / "p.zarr"), "--format", "ctc", "-o", str(out)]) == 0
    assert "wrote a CTC result" in capsys.readouterr().out
    assert (out / "res_track.txt").is_file() and len(list(out.glob("mask*.tif"))) == 5
    assert main(["export", str(files / "p.zarr"), "-o", str(out)]) == 2  # not empty
    assert "--overwrite" in capsys.readouterr().err
    assert main(["export", str(files / "p.zarr"), "-o", str(out), "--overwrite"]) == 0


def test_track_lap_and_overlap(files, capsys):
    assert main(["new", str(files / "img.tif"), "--labels", str(files / "lab.tif"),
                 "-o", str(files / "p.zarr")]) == 0
    assert main(["track", str(files / "p.zarr"), "--max-distance", "15", "--max-gap", "1",
                 "--divisions"]) == 0
    assert "tracked" in capsys.readouterr().out
    p = open_project(files / "p.zarr")
    assert p.graph.n_edges > 0 and p.metadata.provenance[-1]["step"] == "track"
    assert p.metadata.provenance[-1]["params"]["max_distance"] == 15.0
    assert main(["track", str(files / "p.zarr"), "--method", "overlap",
                 "--min-overlap", "0.2"]) == 0
    assert open_project(files / "p.zarr").metadata.provenance[-1]["params"]["method"] == "overlap"
    assert main(["track", str(files / "p.zarr"), "--min-overlap", "7", "--method",
                 "overlap"]) == 2
    assert "--min-overlap must be <= 1" in capsys.readouterr().err


def test_track_without_labels_is_an_error(files, capsys):
    assert main(["new", str(files / "img.tif"), "-o", str(files / "p.zarr")]) == 0
    assert main(["track", str(files / "p.zarr")]) == 2
    assert "segment" in capsys.readouterr().err


def test_demo_end_to_end(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("H4TRACKS_CONFIG_DIR", str(tmp_path / "cfg"))
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--frames", "4", "--size", "96", "--cells", "5",
                 "--cores", "1"]) == 0
    text = capsys.readouterr().out
    assert "segmented with h4tracks-demo" in text and "tracked" in text
    p = open_project(out / "demo.zarr")
    assert len(p.graph) > 0 and p.graph.n_edges > 0 and p.auto is not None
    assert [e["step"] for e in p.metadata.provenance] == ["segment", "track"]
    assert (out / "ctc" / "res_track.txt").is_file()
    assert (out / "ground_truth" / "01_GT" / "TRA" / "man_track.txt").is_file()
    # the quality it prints is the evaluation of the saved project against its ground truth
    import re

    from h4tracks.core.evaluation import evaluate

    rep = evaluate(out / "demo.zarr", out / "ground_truth" / "01_GT")
    seg = re.search(r"SEG (\d\.\d{3})  AP@0\.5 (\d\.\d{3})", text)
    tra = re.search(r"TRA (\d\.\d{3})  division F1 (\d\.\d{2}|-)", text)
    assert seg and tra, text
    assert float(seg[1]) == round(rep.segmentation.seg, 3)
    assert float(seg[2]) == round(rep.segmentation.average_precision, 3)
    assert float(tra[1]) == round(rep.tracking.tra, 3)
    if rep.tracking.reference_divisions + rep.tracking.result_divisions:
        assert float(tra[2]) == round(rep.tracking.division_f1, 2)
    else:
        assert tra[2] == "-"
    assert "h4tracks demo --gui" in text


def test_curate_and_segment_keeps_curated_frames(files, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("H4TRACKS_CONFIG_DIR", str(tmp_path / "cfg"))
    assert main(["new", str(files / "img.tif"), "--labels", str(files / "lab.tif"),
                 "-o", str(files / "p.zarr")]) == 0
    assert main(["curate", str(files / "p.zarr"), "--mark", "0:3"]) == 0
    assert main(["curate", str(files / "p.zarr"), "--unmark", "1"]) == 0
    assert "curated frames of" in capsys.readouterr().out
    assert open_project(files / "p.zarr").curated_frames == {0, 2}
    before = np.asarray(open_project(files / "p.zarr").labels)
    assert main(["segment", str(files / "p.zarr"), "--frames", "0:2"]) == 0
    out = capsys.readouterr().out
    assert "kept 1 curated frame(s)" in out and "segmented 1 frame(s)" in out
    after = np.asarray(open_project(files / "p.zarr").labels)
    np.testing.assert_array_equal(after[0], before[0])
    assert main(["segment", str(files / "p.zarr"), "--frames", "0", "--keep-curated"]) == 2
    assert "are curated" in capsys.readouterr().err
    assert main(["segment", str(files / "p.zarr"), "--frames", "0", "--overwrite-curated"]) == 0
    assert open_project(files / "p.zarr").curated_frames == {2}


def test_train_without_curated_frames_is_an_error(files, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("H4TRACKS_CONFIG_DIR", str(tmp_path / "cfg"))
    assert main(["new", str(files / "img.tif"), "--labels", str(files / "lab.tif"),
                 "-o", str(files / "p.zarr")]) == 0
    assert main(["train", str(files / "p.zarr"), "--name", "m"]) == 2
    assert "no curated frame" in capsys.readouterr().err


def test_track_global_and_learn_from_curated_frames(files, capsys):
    assert main(["new", str(files / "img.tif"), "--labels", str(files / "lab.tif"),
                 "-o", str(files / "p.zarr")]) == 0
    assert main(["track", str(files / "p.zarr"), "--method", "global", "--motion",
                 "drift"]) == 0
    assert "(global)" in capsys.readouterr().out
    p = open_project(files / "p.zarr")
    assert p.graph.n_edges > 0 and p.metadata.provenance[-1]["params"]["method"] == "global"
    assert main(["track", str(files / "p.zarr"), "--method", "global", "--learn-from",
                 "0:3"]) == 0
    p = open_project(files / "p.zarr")
    assert p.metadata.provenance[-1]["step"] == "retrack"
    assert set(p.metadata.provenance[-1]["params"]["weights"]) >= {"bias", "div_bias"}
    assert main(["track", str(files / "p.zarr"), "--learn-from", "0:3"]) == 2
    assert "--method global" in capsys.readouterr().err
    assert main(["track", str(files / "p.zarr"), "--method", "global", "--learn-from",
                 "2"]) == 2


def test_train_with_the_recipe(files, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("H4TRACKS_CONFIG_DIR", str(tmp_path / "cfg"))
    big = make_movie(SyntheticConfig(n_frames=5, shape=(96, 96), n_cells=5, radius=6, seed=4))
    tifffile.imwrite(tmp_path / "b.tif", big.image, imagej=True, metadata={"axes": "TYX"})
    tifffile.imwrite(tmp_path / "bl.tif", big.labels.astype(np.uint16))
    assert main(["new", str(tmp_path / "b.tif"), "--labels", str(tmp_path / "bl.tif"),
                 "-o", str(tmp_path / "b.zarr")]) == 0
    assert main(["curate", str(tmp_path / "b.zarr"), "--mark", "0:3"]) == 0
    assert main(["train", str(tmp_path / "b.zarr"), "--name", "m", "--epochs", "4",
                 "--minutes", "1"]) == 2
    assert "not both" in capsys.readouterr().err
    assert main(["train", str(tmp_path / "b.zarr"), "--name", "m", "--epochs", "4",
                 "--from", "h4tracks-demo", "--cores", "1"]) == 0
    out = capsys.readouterr().out
    assert "trained model 'm'" in out and "validation AP@0.5" in out and "base model" in out
    assert main(["models"]) == 0 and "m " in capsys.readouterr().out
    # without --from: fine-tune the default model, as the Segmentation tab does
    assert main(["train", str(tmp_path / "b.zarr"), "--name", "d", "--epochs", "4",
                 "--cores", "1"]) == 0
    registry = ModelRegistry()
    assert registry.get("d").provenance["base"] == registry.default_entry().name
    assert main(["train", str(tmp_path / "b.zarr"), "--name", "s", "--epochs", "4",
                 "--scratch", "--cores", "1"]) == 0
    assert registry.get("s").provenance["base"] is None
    assert registry.get("s").provenance["choice"] == "scratch"
    with pytest.raises(SystemExit):  # one start or the other
        main(["train", str(tmp_path / "b.zarr"), "--name", "x", "--scratch", "--from", "d"])


def test_help_and_light_commands_stay_light():
    """``h4tracks --help`` (and building the parser every command goes through) imports no
    heavy library: torch, Cellpose, napari and zarr load when a command needs them."""
    import subprocess
    import sys

    code = ("import sys; from h4tracks.cli import build_parser; build_parser().format_help(); "
            "print(sorted(m for m in ('torch', 'cellpose', 'napari', 'zarr', 'matplotlib') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
