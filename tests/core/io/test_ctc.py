"""Tests of the Cell Tracking Challenge reader/writer (h4tracks.core.io.ctc)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import tifffile

from h4tracks.core.io.ctc import lineage_from_labels, read_ctc, write_ctc
from h4tracks.datasets.synthetic import SyntheticMovie, make_movie
from h4tracks.errors import InputError


def _toy() -> tuple[np.ndarray, np.ndarray]:
    """6 frames: track 1 (frames 0-2) divides into 2 and 3 (3-5); track 4 lives in frames 1-4."""
    labels = np.zeros((6, 32, 32), np.uint32)
    labels[0:3, 4:12, 4:12] = 1
    labels[3:6, 2:8, 4:12] = 2
    labels[3:6, 9:15, 4:12] = 3
    labels[1:5, 20:28, 18:28] = 4
    lineage = np.array([[1, 0, 2, 0], [2, 3, 5, 1], [3, 3, 5, 1], [4, 1, 4, 0]], np.int64)
    return labels, lineage


@pytest.fixture(scope="module")
def movie() -> SyntheticMovie:
    return make_movie(n_frames=12, shape=(96, 96), n_cells=14, radius=7.0, division_rate=0.2)


# --------------------------------------------------------------------------------------------
# lineage_from_labels


def test_lineage_from_labels_recovers_the_table() -> None:
    labels, lineage = _toy()
    out = lineage_from_labels(labels, {2: 1, 3: 1})
    assert out.dtype == np.int64
    np.testing.assert_array_equal(out, lineage)
    no_parents = lineage.copy()
    no_parents[:, 3] = 0
    np.testing.assert_array_equal(lineage_from_labels(labels), no_parents)


def test_lineage_from_labels_handles_empty_and_large_ids() -> None:
    assert lineage_from_labels(np.zeros((3, 8, 8), np.uint16)).shape == (0, 4)
    labels = np.zeros((2, 8, 8), np.uint32)
    labels[:, :2, :2] = 4_000_000_000  # ids far beyond the pixel count use the sort path
    labels[1, 5:, 5:] = 7
    np.testing.assert_array_equal(
        lineage_from_labels(labels), [[7, 1, 1, 0], [4_000_000_000, 0, 1, 0]]
    )


def test_lineage_from_labels_rejects_gaps_and_bad_parents() -> None:
    labels, _ = _toy()
    gap = labels.copy()
    gap[1][gap[1] == 4] = 0  # track 4: frames 2-4 only, fine
    gap[3][gap[3] == 4] = 0  # now missing in frame 3 between 2 and 4
    with pytest.raises(InputError, match="Track 4 is missing from frame 3"):
        lineage_from_labels(gap)
    with pytest.raises(InputError, match="parent 9"):
        lineage_from_labels(labels, {2: 9})
    with pytest.raises(InputError, match="Track 4 starts in frame 1 but its parent 1"):
        lineage_from_labels(labels, {4: 1})
    with pytest.raises(InputError, match="track 8"):
        lineage_from_labels(labels, {8: 1})
    with pytest.raises(InputError, match=r"\(T, Y, X\)"):
        lineage_from_labels(labels[0])
    with pytest.raises(InputError, match="integer"):
        lineage_from_labels(labels.astype(float))


# --------------------------------------------------------------------------------------------
# write / read round trips


def test_res_round_trip(tmp_path: Path) -> None:
    labels, lineage = _toy()
    out = write_ctc(tmp_path / "res", labels, lineage)
    assert out == tmp_path / "res"
    names = sorted(p.name for p in out.iterdir())
    assert names == [f"mask{t:03d}.tif" for t in range(6)] + ["res_track.txt"]
    assert (out / "res_track.txt").read_text() == "1 0 2 0\n2 3 5 1\n3 3 5 1\n4 1 4 0\n"
    assert tifffile.imread(out / "mask000.tif").dtype == np.uint16
    got_labels, got_lineage = read_ctc(out)
    assert got_labels.dtype == np.uint32 and got_lineage.dtype == np.int64
    np.testing.assert_array_equal(got_labels, labels)
    np.testing.assert_array_equal(got_lineage, lineage)


def test_gt_round_trip_from_every_entry_point(tmp_path: Path, movie: SyntheticMovie) -> None:
    gt = write_ctc(tmp_path, movie.labels, movie.lineage, kind="gt", image=movie.image)
    assert gt == tmp_path / "01_GT"
    n_t = movie.labels.shape[0]
    for sub, prefix in (("01_GT/TRA", "man_track"), ("01_GT/SEG", "man_seg"), ("01", "t")):
        files = sorted(p.name for p in (tmp_path / sub).glob("*.tif"))
        assert files == [f"{prefix}{t:03d}.tif" for t in range(n_t)], sub
    assert (gt / "TRA" / "man_track.txt").is_file()
    raw = tifffile.imread(tmp_path / "01" / "t005.tif")
    np.testing.assert_array_equal(raw, movie.image[5])
    for entry in (tmp_path, gt, gt / "TRA"):
        got_labels, got_lineage = read_ctc(entry)
        np.testing.assert_array_equal(got_labels, movie.labels)
        np.testing.assert_array_equal(got_lineage, movie.lineage)


def test_large_ids_are_written_as_uint32(tmp_path: Path) -> None:
    labels, lineage = _toy()
    labels[labels == 4] = 70_000
    lineage[3, 0] = 70_000
    write_ctc(tmp_path, labels, lineage)
    assert tifffile.imread(tmp_path / "mask002.tif").dtype == np.uint32
    np.testing.assert_array_equal(read_ctc(tmp_path)[0], labels)


def test_long_movies_use_four_digits(tmp_path: Path) -> None:
    labels = np.ones((1001, 2, 2), np.uint16)
    write_ctc(tmp_path, labels, np.array([[1, 0, 1000, 0]]))
    assert (tmp_path / "mask0000.tif").is_file() and (tmp_path / "mask1000.tif").is_file()
    assert not (tmp_path / "mask000.tif").exists()
    assert read_ctc(tmp_path)[0].shape == (1001, 2, 2)


def test_rewriting_a_shorter_movie_drops_stale_frames(tmp_path: Path) -> None:
    labels, lineage = _toy()
    write_ctc(tmp_path, labels, lineage)
    (tmp_path / "notes.tif").write_bytes(b"not ours")  # unrelated files are left alone
    short = labels[:3]
    write_ctc(tmp_path, short, lineage_from_labels(short))
    assert not (tmp_path / "mask003.tif").exists()
    assert (tmp_path / "notes.tif").exists()
    np.testing.assert_array_equal(read_ctc(tmp_path)[0], short)


# --------------------------------------------------------------------------------------------
# agreement with the official metrics (py-ctcmetrics)


def _evaluate(res: Path, gt: Path) -> dict:
    import ctc_metrics  # the oracle is a test dependency: never skip silently
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        valid = ctc_metrics.validate_sequence(str(res), threads=1)["Valid"]
        scores = ctc_metrics.evaluate_sequence(
            str(res), str(gt), metrics=["Valid", "DET", "TRA", "SEG"], threads=1
        )
    assert valid == 1, "py-ctcmetrics rejects the result layout"
    assert scores["Valid"] == 1
    return scores


def test_ctc_metrics_scores_identical_result_perfectly(
    tmp_path: Path, movie: SyntheticMovie
) -> None:
    gt = write_ctc(tmp_path / "gt", movie.labels, movie.lineage, kind="gt")
    res = write_ctc(tmp_path / "res", movie.labels, movie.lineage)
    scores = _evaluate(res, gt)
    assert scores["TRA"] == 1.0
    assert scores["DET"] == 1.0
    assert scores["SEG"] == 1.0


def _leaf_track(movie: SyntheticMovie, min_len: int) -> int:
    lin = movie.lineage
    leaves = lin[~np.isin(lin[:, 0], lin[:, 3]) & (lin[:, 2] - lin[:, 1] + 1 >= min_len)]
    return int(leaves[0, 0])


def test_ctc_metrics_penalises_an_id_switch(tmp_path: Path, movie: SyntheticMovie) -> None:
    gt = write_ctc(tmp_path / "gt", movie.labels, movie.lineage, kind="gt")
    tid = _leaf_track(movie, 4)
    row = movie.lineage[movie.lineage[:, 0] == tid][0]
    mid = int(row[1] + row[2] + 1) // 2
    new_id = int(movie.lineage[:, 0].max()) + 1
    labels = movie.labels.copy()
    labels[mid:][labels[mid:] == tid] = new_id
    lineage = movie.lineage.copy()
    lineage[lineage[:, 0] == tid, 2] = mid - 1
    lineage = np.vstack([lineage, [new_id, mid, row[2], 0]])
    res = write_ctc(tmp_path / "res", labels, lineage)
    scores = _evaluate(res, gt)
    assert scores["DET"] == 1.0
    assert scores["TRA"] < 1.0


def test_ctc_metrics_penalises_a_missing_cell(tmp_path: Path, movie: SyntheticMovie) -> None:
    gt = write_ctc(tmp_path / "gt", movie.labels, movie.lineage, kind="gt")
    tid = _leaf_track(movie, 1)
    labels = movie.labels.copy()
    labels[labels == tid] = 0
    lineage = movie.lineage[movie.lineage[:, 0] != tid]
    res = write_ctc(tmp_path / "res", labels, lineage)
    scores = _evaluate(res, gt)
    assert scores["DET"] < 1.0
    assert scores["TRA"] < 1.0


# --------------------------------------------------------------------------------------------
# bad input


def test_write_rejects_a_lineage_that_does_not_match(tmp_path: Path) -> None:
    labels, lineage = _toy()
    absent = np.vstack([lineage, [9, 0, 1, 0]])
    with pytest.raises(InputError, match=r"Track 9 .*never appears"):
        write_ctc(tmp_path, labels, absent)
    late_parent = lineage.copy()
    late_parent[3, 3] = 2  # track 4 starts in frame 1, its "parent" 2 only in frame 3
    with pytest.raises(InputError, match="Track 4 starts in frame 1 but its parent 2"):
        write_ctc(tmp_path, labels, late_parent)
    wrong_end = lineage.copy()
    wrong_end[3, 2] = 5
    with pytest.raises(InputError, match="Track 4 is listed for frames 1-5"):
        write_ctc(tmp_path, labels, wrong_end)
    missing_row = lineage[:3]
    with pytest.raises(InputError, match=r"Label 4 .*not in the lineage"):
        write_ctc(tmp_path, labels, missing_row)
    unknown_parent = lineage.copy()
    unknown_parent[3, 3] = 12
    with pytest.raises(InputError, match="Track 4 has parent 12"):
        write_ctc(tmp_path, labels, unknown_parent)
    duplicated = np.vstack([lineage, lineage[:1]])
    with pytest.raises(InputError, match="Track 1 is listed more than once"):
        write_ctc(tmp_path, labels, duplicated)
    with pytest.raises(InputError, match=r"shape \(N, 4\)"):
        write_ctc(tmp_path, labels, lineage[:, :3])
    assert not any(tmp_path.iterdir()), "nothing is written when validation fails"


def test_write_rejects_bad_arguments(tmp_path: Path) -> None:
    labels, lineage = _toy()
    with pytest.raises(InputError, match="kind"):
        write_ctc(tmp_path, labels, lineage, kind="results")
    with pytest.raises(InputError, match="image shape"):
        write_ctc(tmp_path, labels, lineage, kind="gt", image=np.zeros((6, 16, 16)))
    with pytest.raises(InputError, match="kind='gt'"):
        write_ctc(tmp_path, labels, lineage, image=np.zeros(labels.shape))
    with pytest.raises(InputError, match="sequence"):
        write_ctc(tmp_path, labels, lineage, kind="gt", sequence="../01")
    with pytest.raises(InputError, match="negative"):
        write_ctc(tmp_path, labels.astype(np.int32) - 1, lineage)


def test_read_reports_a_missing_frame(tmp_path: Path) -> None:
    labels, lineage = _toy()
    write_ctc(tmp_path, labels, lineage)
    (tmp_path / "mask002.tif").unlink()
    with pytest.raises(InputError, match="missing mask frame 2"):
        read_ctc(tmp_path)


@pytest.mark.parametrize(
    "text",
    ["hello world\n", "1 0 2\n", "1 0 2 0 7\n", "1 0 x 0\n", "1 0 2 0\n2 3 5 1\n3 3 5 1\n"],
)
def test_read_reports_a_malformed_track_file(tmp_path: Path, text: str) -> None:
    labels, lineage = _toy()
    write_ctc(tmp_path, labels, lineage)
    (tmp_path / "res_track.txt").write_text(text)
    with pytest.raises(InputError, match=r"res_track\.txt"):
        read_ctc(tmp_path)


def test_read_reports_a_corrupt_frame(tmp_path: Path) -> None:
    labels, lineage = _toy()
    write_ctc(tmp_path, labels, lineage)
    (tmp_path / "mask001.tif").write_bytes(b"\x00garbage" * 10)
    with pytest.raises(InputError, match=r"mask001\.tif"):
        read_ctc(tmp_path)


def test_read_rejects_folders_without_a_tracking(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        read_ctc(tmp_path / "nope")
    with pytest.raises(InputError, match="not a CTC folder"):
        read_ctc(tmp_path)
    labels, lineage = _toy()
    write_ctc(tmp_path, labels, lineage, kind="gt", sequence="01")
    write_ctc(tmp_path, labels, lineage, kind="gt", sequence="02")
    with pytest.raises(InputError, match="several sequences"):
        read_ctc(tmp_path)
    np.testing.assert_array_equal(read_ctc(tmp_path / "02_GT")[0], labels)


# --------------------------------------------------------------------------------------------
# project export (graph -> CTC)

def _project_with_gt_graph(movie: SyntheticMovie, relabel: bool = True):
    """A project whose labels are NOT track ids (per-frame ids) but whose graph is the GT."""
    from h4tracks.core.graph import TrackGraph
    from h4tracks.core.project import Project

    graph = TrackGraph.from_ctc(movie.labels, movie.lineage)
    if not relabel:
        return Project(movie.image, movie.labels.copy(), graph=graph)
    # scramble ids per frame: the export must map (t, label) -> track, not trust label values
    labels = movie.labels.copy()
    nodes = graph.node_table()
    perm_graph = TrackGraph.from_arrays(
        {**{k: nodes[k] for k in ("t", "y", "x", "area")}, "label": nodes["label"] * 7 + 3},
        np.concatenate([graph.edge_array()[:, :1], graph.edge_array()[:, 1:2] * 7 + 3,
                        graph.edge_array()[:, 2:3], graph.edge_array()[:, 3:] * 7 + 3], 1),
    )
    labels = np.where(labels > 0, labels * 7 + 3, 0).astype(np.uint32)
    return Project(movie.image, labels, graph=perm_graph)


def test_export_of_ground_truth_graph_scores_perfectly(tmp_path: Path, movie) -> None:
    from h4tracks.core.io.ctc import export_ctc

    gt = write_ctc(tmp_path / "gt", movie.labels, movie.lineage, kind="gt")
    project = _project_with_gt_graph(movie)
    seen = []
    res = export_ctc(project, tmp_path / "res", progress=lambda d, n: seen.append(d))
    assert seen[-1] == movie.labels.shape[0]
    scores = _evaluate(res, gt)
    assert scores["TRA"] == 1.0 and scores["DET"] == 1.0 and scores["SEG"] == 1.0
    _, lineage = read_ctc(res)
    assert len(lineage) == len(movie.lineage)
    assert (lineage[:, 3] > 0).sum() == (movie.lineage[:, 3] > 0).sum()


def test_export_splits_gaps_into_parent_child(tmp_path: Path, movie) -> None:
    from h4tracks.core.io.ctc import export_ctc, graph_to_ctc

    project = _project_with_gt_graph(movie, relabel=False)
    tid = _leaf_track(movie, min_len=5)
    first = int(movie.lineage[movie.lineage[:, 0] == tid, 1][0])
    # the cell is missed in frame first+2 and the tracker bridged the gap
    frame = project.labels.frame(first + 2)
    project.labels[first + 2] = np.where(frame == tid, 0, frame)
    g = project.graph
    g.add_edge((first + 1, tid), (first + 3, tid))
    _, lineage = graph_to_ctc(g)
    assert len(lineage) == len(movie.lineage) + 1
    res = export_ctc(project, tmp_path / "res")  # write_ctc checks continuity itself
    gt = write_ctc(tmp_path / "gt", movie.labels, movie.lineage, kind="gt")
    scores = _evaluate(res, gt)
    assert 0.95 < scores["TRA"] < 1.0


def test_export_without_labels_is_an_error(tmp_path: Path, movie) -> None:
    from h4tracks.core.io.ctc import export_ctc
    from h4tracks.core.project import Project

    with pytest.raises(InputError, match="no segmentation"):
        export_ctc(Project(movie.image), tmp_path / "res")
    assert not (tmp_path / "res").exists()
