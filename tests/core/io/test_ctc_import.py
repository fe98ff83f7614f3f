"""CTC in: a CTC ground truth or result folder becomes a project, lineage included, and
export → import → export gives the same files."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from h4tracks.cli import main
from h4tracks.core.io.ctc import read_ctc, write_ctc
from h4tracks.core.store import open_project
from h4tracks.datasets.synthetic import make_movie


@pytest.fixture(scope="module")
def movie():
    m = make_movie(n_frames=8, shape=(80, 80), n_cells=6, radius=6, division_rate=0.25, seed=5)
    assert (m.lineage[:, 3] > 0).sum() >= 2  # divisions to carry over
    return m


def test_ctc_ground_truth_becomes_a_project_with_its_lineage(movie, tmp_path, capsys):
    write_ctc(tmp_path / "data", movie.labels, movie.lineage, kind="gt", image=movie.image)
    out = tmp_path / "p.zarr"
    assert main(["new", "--ctc", str(tmp_path / "data" / "01_GT"), "-o", str(out)]) == 0
    capsys.readouterr()
    p = open_project(out)
    assert np.array_equal(np.asarray(p.image[:]), movie.image)
    n_div = int((np.unique(movie.lineage[movie.lineage[:, 3] > 0, 3],
                           return_counts=True)[1] == 2).sum())
    assert p.graph.n_divisions == n_div and n_div > 0
    assert p.auto is not None  # an imported result is kept to score curation against
    # export -> import -> export is identical
    e1, e2 = tmp_path / "e1", tmp_path / "e2"
    assert main(["export", str(out), "-o", str(e1)]) == 0
    assert main(["new", str(tmp_path / "data" / "01" / "t000.tif"), "--ctc", str(e1),
                 "-o", str(tmp_path / "q.zarr")]) == 2  # one frame is not the movie
    tifffile.imwrite(tmp_path / "img.tif", movie.image)
    assert main(["new", str(tmp_path / "img.tif"), "--ctc", str(e1),
                 "-o", str(tmp_path / "q.zarr")]) == 0
    assert main(["export", str(tmp_path / "q.zarr"), "-o", str(e2)]) == 0
    l1, g1 = read_ctc(e1)
    l2, g2 = read_ctc(e2)
    assert np.array_equal(l1, l2) and np.array_equal(g1, g2)
    assert (e1 / "res_track.txt").read_bytes() == (e2 / "res_track.txt").read_bytes()
    # and the export is the same tracking as the ground truth (ids may be renumbered)
    assert len(g1) == len(movie.lineage) and (g1[:, 3] > 0).sum() == (movie.lineage[:, 3] > 0).sum()


def test_ctc_import_errors_are_one_line(movie, tmp_path, capsys):
    write_ctc(tmp_path / "res", movie.labels, movie.lineage)
    # a result folder has no raw frames beside it
    assert main(["new", "--ctc", str(tmp_path / "res"), "-o", str(tmp_path / "p.zarr")]) == 2
    err = capsys.readouterr().err.strip()
    assert "Found no image" in err and "\n" not in err
    assert main(["new", "--ctc", str(tmp_path / "nothing"), "-o", str(tmp_path / "p.zarr")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["new", "-o", str(tmp_path / "p.zarr")]) == 2
    assert "--ctc" in capsys.readouterr().err
    assert not (tmp_path / "p.zarr").exists()


def test_ctc_track_file_disagreeing_with_the_masks_creates_nothing(movie, tmp_path):
    """create_project (behind `h4tracks new --ctc` and the Data tab's Import CTC folder):
    a res_track.txt whose first track ends later than its masks do is one sentence."""
    from h4tracks.core.io.importing import create_project
    from h4tracks.errors import InputError

    write_ctc(tmp_path / "res", movie.labels, movie.lineage)
    tifffile.imwrite(tmp_path / "img.tif", movie.image)
    track_file = tmp_path / "res" / "res_track.txt"
    rows = track_file.read_text().splitlines()
    tid, first, last, parent = rows[0].split()
    rows[0] = f"{tid} {first} {int(last) + 1 if int(last) < 7 else int(last) - 1} {parent}"
    track_file.write_text("\n".join(rows) + "\n")
    with pytest.raises(InputError) as info:
        create_project(tmp_path / "p.zarr", tmp_path / "img.tif", ctc=tmp_path / "res")
    assert "\n" not in str(info.value) and "track" in str(info.value), info.value
    assert not (tmp_path / "p.zarr").exists()


def test_raw_frames_are_taken_only_when_they_fit_the_masks(movie, tmp_path):
    """The raw frames of the sequence are the image only if they have the masks' frame numbers
    and size; otherwise the image is asked for (CTCImageNeeded) and may be a folder of raw
    frames or, picked in a file dialog, one of its frames."""
    from h4tracks.core.io.importing import (
        CTCImageNeeded,
        create_project,
        ctc_image_source,
        ctc_raw_frames_folder,
    )
    from h4tracks.errors import InputError

    data = tmp_path / "data"
    write_ctc(data, movie.labels, movie.lineage, kind="gt", image=movie.image)
    write_ctc(data / "01_RES", movie.labels, movie.lineage)
    for picked in (data, data / "01_GT", data / "01_GT" / "TRA", data / "01_RES"):
        assert ctc_raw_frames_folder(picked) == (data / "01").absolute(), picked
    # sequences whose folder holds t*.tif that are not its frames
    write_ctc(data / "02_RES", movie.labels, movie.lineage)
    (data / "02").mkdir()
    for t in range(5):  # fewer frames than the tracking
        tifffile.imwrite(data / "02" / f"t{t:03d}.tif", movie.image[t])
    write_ctc(data / "03_RES", movie.labels, movie.lineage)
    (data / "03").mkdir()
    for t in range(8):  # every frame, but of another size
        tifffile.imwrite(data / "03" / f"t{t:03d}.tif", movie.image[t, :40, :40])
    write_ctc(data / "04_RES", movie.labels, movie.lineage)
    (data / "04").mkdir()
    tifffile.imwrite(data / "04" / "thumbnail.tif", movie.image[0])  # t*.tif, not a frame
    for res in ("02_RES", "03_RES", "04_RES"):
        assert ctc_raw_frames_folder(data / res) is None, res
        with pytest.raises(CTCImageNeeded) as info:
            create_project(tmp_path / f"{res}.zarr", ctc=data / res)
        assert "give the image" in str(info.value) and "\n" not in str(info.value)
        assert not (tmp_path / f"{res}.zarr").exists()
    with pytest.raises(CTCImageNeeded, match="02: it has 5 frames"):
        create_project(tmp_path / "x.zarr", ctc=data / "02_RES")
    # the image given as the folder of raw frames (or the frame picked in a file dialog)
    assert ctc_image_source(data / "01" / "t003.tif", data / "02_RES") == data / "01"
    assert ctc_image_source(data / "02" / "t003.tif", data / "02_RES") == \
        data / "02" / "t003.tif"  # not a sequence that fits: the file itself
    path, project = create_project(tmp_path / "p.zarr", data / "01", ctc=data / "02_RES")
    assert np.array_equal(np.asarray(open_project(path).image[:]), movie.image)
    assert project.graph.n_divisions > 0
    with pytest.raises(InputError, match="does not hold the raw frames") as info:
        create_project(tmp_path / "q.zarr", data / "03", ctc=data / "03_RES")
    assert "(80, 80)" in str(info.value) and not (tmp_path / "q.zarr").exists()
    # not a CTC folder at all: said at once
    with pytest.raises(InputError, match="not a CTC folder"):
        ctc_raw_frames_folder(data / "04")


def test_suggested_project_is_named_after_the_sequence_outside_the_ctc_folders(movie,
                                                                               tmp_path):
    from h4tracks.core.io.importing import ctc_project_path

    data = tmp_path / "Fluo-N2DH-SIM+"
    write_ctc(data, movie.labels, movie.lineage, kind="gt", image=movie.image)
    write_ctc(data / "01_RES", movie.labels, movie.lineage)
    write_ctc(tmp_path / "my run", movie.labels, movie.lineage)
    for picked in (data, data / "01_GT", data / "01_GT" / "TRA"):
        assert ctc_project_path(picked) == (data / "01_GT.zarr").absolute(), picked
    assert ctc_project_path(data / "01_RES") == (data / "01_RES.zarr").absolute()
    assert ctc_project_path(tmp_path / "my run") == (tmp_path / "my run.zarr").absolute()
    (data / "01_GT.zarr").mkdir()  # taken: the next free name
    assert ctc_project_path(data / "01_GT" / "TRA") == (data / "01_GT-2.zarr").absolute()
    loose = tmp_path / "loose"
    write_ctc(loose, movie.labels, movie.lineage, kind="gt", sequence="x")
    (loose / "x_GT").rename(loose / "gt")  # a TRA folder outside the CTC naming
    assert ctc_project_path(loose / "gt" / "TRA") == (loose / "gt_TRA.zarr").absolute()
