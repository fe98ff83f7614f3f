"""The run's cross-movie report (one sequential run of 5 tiny movies, labels imported): the
pooled rose and MSD figures by condition (PNG + SVG, in report.html) computed from every
movie of the condition, the quality flags in movies.csv, and the run folder read back."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np
import pytest
import tifffile
from pipeline_movies import pipeline_dict

from h4tracks.core.analysis.trajectories import concat_trajectories, origin_trajectories
from h4tracks.core.pipeline import discover_movies, parse_pipeline, read_run, run_pipeline
from h4tracks.core.pipeline.quality import project_flags
from h4tracks.core.pipeline.report import group_motion
from h4tracks.core.store import open_project
from h4tracks.errors import InputError

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def run(manifest, tmp_path_factory):
    """The 4 movies of the shared manifest plus ``gappy``: m0 with its labels emptied in
    frames 5-7 (its flags must say so)."""
    folder = tmp_path_factory.mktemp("report")
    with open(manifest, encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    for row in rows:  # absolute: this manifest lives in another folder
        row["image"] = str(manifest.parent / row["image"])
        row["labels"] = str(manifest.parent / row["labels"])
    labels = tifffile.imread(rows[0]["labels"])
    labels[5:] = 0
    tifffile.imwrite(folder / "gappy_labels.tif", labels, photometric="minisblack",
                     metadata={"axes": "TYX"})
    rows.append({**rows[0], "labels": str(folder / "gappy_labels.tif"), "name": "gappy"})
    fields = ["image", "labels", "name", "condition", "replicate"]
    with open(folder / "movies.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        writer.writerows({k: r.get(k, "") for k in fields} for r in rows)
    pipeline = parse_pipeline(pipeline_dict(folder / "movies.csv", folder / "out"))
    result = run_pipeline(pipeline, scheduler="sequential", progress=False)
    assert result.ok, result.failed
    return pipeline, result


def _ids(svg: str, kind: str) -> list[str]:
    return re.findall(rf'id="{kind}-([^"]+)"', svg)


def test_rose_and_msd_by_condition_as_png_and_svg_in_the_report(run):
    pipeline, result = run
    files = result.files
    for key in ("mean_speed", "directness", "rose", "msd"):
        assert files[f"figure:{key}"].suffix == ".png", key
        assert files[f"figure:{key}"].read_bytes()[:4] == b"\x89PNG"
        assert files[f"svg:{key}"].suffix == ".svg"
        assert files[f"svg:{key}"].parent == pipeline.output_dir / "figures"
    # one panel / one curve per condition, and nothing else
    assert _ids(files["svg:rose"].read_text(), "rose") == ["fast", "slow"]
    assert _ids(files["svg:msd"].read_text(), "msd") == ["fast", "slow"]
    page = files["html"].read_text()
    for name in ("rose_by_condition", "msd_by_condition", "mean_speed_by_condition"):
        assert f'src="figures/{name}.png"' in page and f'href="figures/{name}.svg"' in page


def test_pooled_motion_is_every_movie_of_the_condition(run):
    pipeline, result = run
    movies = discover_movies(pipeline)
    groups, left_out = group_motion(pipeline, movies, result.results)
    assert left_out == [] and list(groups) == ["fast", "slow"]
    tracks = result.tracks
    for condition, motion in groups.items():
        names = [m.name for m in movies if m.columns["condition"] == condition]
        assert motion.movies == names
        graphs = [open_project(pipeline.output_dir / "projects" / f"{n}.zarr").graph
                  for n in names]
        # rose: those projects' trajectories from the origin, one after another
        want = concat_trajectories([origin_trajectories(g) for g in graphs])
        np.testing.assert_array_equal(motion.trajectories.track_ids, want.track_ids)
        np.testing.assert_allclose(motion.trajectories.dx, want.dx)
        np.testing.assert_allclose(motion.trajectories.dy, want.dy)
        # as many trajectories as the pooled table has tracks of that condition
        assert motion.trajectories.n_tracks == int(np.sum(tracks["condition"] == condition))
        # MSD at lag 1, computed here from the node tables: the mean over all tracks of the
        # condition of each track's mean squared one-frame step
        per_track = []
        for g in graphs:
            nt = g.node_table()
            order = np.lexsort((nt["t"], nt["track_id"]))
            tid, t = nt["track_id"][order], nt["t"][order]
            y, x = nt["y"][order], nt["x"][order]
            step = (tid[1:] == tid[:-1]) & (t[1:] - t[:-1] == 1)
            sq = (np.diff(y) ** 2 + np.diff(x) ** 2)[step]
            owner = tid[:-1][step]
            per_track += [sq[owner == k].mean() for k in np.unique(owner)]
        assert motion.msd.lags[0] == 1 and motion.msd.length_unit == "px"
        assert motion.msd.n_tracks[0] == len(per_track)
        np.testing.assert_allclose(motion.msd.mean[0], np.mean(per_track))
        np.testing.assert_allclose(motion.msd.sem[0],
                                   np.std(per_track, ddof=1) / np.sqrt(len(per_track)))


def test_quality_flags_reach_movies_csv(run):
    pipeline, result = run
    flags = dict(zip(result.movies["movie"].tolist(), result.movies["flags"].tolist(),
                     strict=True))
    assert "3 empty frames" in flags["gappy"].split("; ")
    for name, text in flags.items():
        project = open_project(pipeline.output_dir / "projects" / f"{name}.zarr")
        assert text == "; ".join(project_flags(project)), name


def test_the_run_folder_read_back(run, tmp_path):
    pipeline, _result = run
    folder = read_run(pipeline.output_dir)
    assert folder.columns == ["condition", "replicate"]
    assert [m.name for m in folder.movies] == ["m0", "m1", "m2", "m3", "gappy"]
    gappy = folder.movie("gappy")
    assert gappy.columns == {"condition": "slow", "replicate": "0"}
    assert gappy.status == "ok" and "3 empty frames" in gappy.flags
    assert gappy.project == pipeline.output_dir / "projects" / "gappy.zarr"
    assert all(m.has_project for m in folder.movies)
    with pytest.raises(InputError, match="has no movie 'nope'"):
        folder.movie("nope")

    with pytest.raises(InputError, match=r"is not the output folder of an h4tracks run \(it "
                                         r"has no movies.csv\)$"):
        read_run(tmp_path)
    Path(tmp_path / "movies.csv").write_text("image,condition\na.tif,x\n")
    with pytest.raises(InputError, match="is not the movie table of an h4tracks run"):
        read_run(tmp_path)
