"""``h4tracks analyze`` and ``h4tracks evaluate`` (in-process; errors are one line, exit 2)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import tifffile

from h4tracks.cli import main
from h4tracks.core.graph import TrackGraph
from h4tracks.core.io.ctc import write_ctc
from h4tracks.core.project import Project
from h4tracks.core.store import save_project
from h4tracks.datasets.synthetic import make_movie


@pytest.fixture(scope="module")
def movie():
    return make_movie(n_frames=8, shape=(96, 96), n_cells=6, radius=7, seed=6)


@pytest.fixture(scope="module")
def saved(tmp_path_factory, movie):
    """A tracked project without snapshot and one with a snapshot and a curation."""
    d = tmp_path_factory.mktemp("cli_analysis")
    plain = Project(movie.image, movie.labels.copy(),
                    graph=TrackGraph.from_ctc(movie.labels, movie.lineage),
                    metadata={"name": "plain", "pixel_size": 0.5, "frame_interval": 2,
                              "time_unit": "min"})
    save_project(plain, d / "plain.zarr")
    cur = Project(movie.image, movie.labels.copy(),
                  graph=TrackGraph.from_ctc(movie.labels, movie.lineage),
                  metadata={"name": "curated"})
    cur.take_auto_snapshot(step="test")
    frame = cur.labels.frame(2).copy()
    frame[frame == int(frame[frame > 0].min())] = 0
    cur.labels.set_frame(2, frame)
    save_project(cur, d / "cur.zarr")
    tifffile.imwrite(d / "ref.tif", movie.labels)
    write_ctc(d / "gt", movie.labels, movie.lineage, kind="gt", image=movie.image)
    return d


def test_analyze_csv_detections_and_figure(saved, movie, capsys):
    out = saved / "m.csv"
    rc = main(["analyze", str(saved / "plain.zarr"), "-o", str(out), "--min-length", "3",
               "--sep", ";", "--decimal", ",", "--detections", str(saved / "det.csv"),
               "--plot", "scatter", "--x", "mean_speed", "--y", "directness",
               "--figure", str(saved / "fig.png")])
    text = capsys.readouterr().out
    assert rc == 0, text
    df = pd.read_csv(out, sep=";", decimal=",", encoding="utf-8-sig")
    assert "mean_speed [µm/min]" in df.columns and "passes_filters" in df.columns
    assert df["passes_filters"].sum() == (df["n_points"] >= 3).sum()
    assert f"{len(df)} tracks" in text and "m_summary.csv" in text
    assert (saved / "m_summary.csv").is_file()
    det = pd.read_csv(saved / "det.csv", sep=";", decimal=",", encoding="utf-8-sig")
    assert len(det) == sum(np.unique(f[f > 0]).size for f in movie.labels)
    assert (saved / "fig.png").stat().st_size > 0
    for kind in ("rose", "msd"):
        assert main(["analyze", str(saved / "plain.zarr"), "-o", str(saved / "k.csv"),
                     "--plot", kind, "--figure", str(saved / f"{kind}.svg")]) == 0
        assert (saved / f"{kind}.svg").read_text().lstrip().startswith("<?xml")
    assert main(["analyze", str(saved / "plain.zarr"), "-o", str(saved / "h.csv"),
                 "--plot", "histogram", "--x", "path_length",
                 "--figure", str(saved / "h.png")]) == 0


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--plot", "scatter", "--figure", "f.png"], "--x"),
        (["--plot", "rose"], "--figure"),
        (["--plot", "histogram", "--x", "nope", "--figure", "f.png"], "nope"),
        (["--sep", ",", "--decimal", ","], "separator"),
        (["--plot", "rose", "--figure", "f.gif"], ".png or .svg"),
    ],
)
def test_analyze_errors_are_one_line(saved, capsys, extra, needle, monkeypatch):
    monkeypatch.chdir(saved)
    rc = main(["analyze", str(saved / "plain.zarr"), "-o", str(saved / "e.csv"), *extra])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("h4tracks: error:") and err.count("\n") == 1, err
    assert needle in err


def test_evaluate_curated_vs_auto_with_reports(saved, capsys):
    rc = main(["evaluate", str(saved / "cur.zarr"), "--frames", "0:5",
               "--json", str(saved / "r.json"), "--markdown", str(saved / "r.md"),
               "--html", str(saved / "r.html")])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "automatic snapshot vs curated project, frames 0-4" in out
    assert "TRA" in out and "F1" in out and "FP 1" in out
    data = json.loads((saved / "r.json").read_text())
    assert data["frames"] == [0, 4] and data["tracking"]["tra"] < 1
    assert "# Evaluation report" in (saved / "r.md").read_text()
    assert "<html>" in (saved / "r.html").read_text()


def test_evaluate_external_references(saved, capsys):
    assert main(["evaluate", str(saved / "plain.zarr"), "--reference", str(saved / "gt")]) == 0
    out = capsys.readouterr().out
    assert "TRA 1.0000" in out and "SEG 1.0000" in out
    assert main(["evaluate", str(saved / "cur.zarr"), "--reference", str(saved / "ref.tif")]) == 0
    out = capsys.readouterr().out
    assert "segmentation:" in out and "tracking:" not in out and "note:" in out


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["plain.zarr"], "no automatic result"),
        (["cur.zarr", "--frames", "3:3"], "no frame"),
        (["cur.zarr", "--reference", "missing.tif"], "does not exist"),
        (["missing.zarr"], "missing.zarr"),
    ],
)
def test_evaluate_errors_are_one_line(saved, capsys, args, needle, monkeypatch):
    monkeypatch.chdir(saved)
    rc = main(["evaluate", *args])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("h4tracks: error:") and err.count("\n") == 1, err
    assert needle in err
