"""traccuracy reads our GEFF export (issue 21, item 3): its own loader gets every node and
link, and the tracking scored against itself is perfect (CTC TRA / DET / LNK, divisions).

traccuracy is not in the testing extra: 0.4.3 pins ``click<8.2`` while the extra's
import-linter needs ``click>=8.2``. Installed by hand (``pip install --no-deps traccuracy
skan pylapy``; numba, networkx, pandas, geff are here already) the test runs; else it is
skipped.

traccuracy 0.4.3's ``load_geff_seg=True`` looks for the labels' node property under
``label_prop``, the name geff-spec deprecated in 1.2.1 for ``node_prop`` (what we write), so
the segmentation is given the documented other way: ``seg_path`` + ``seg_property``.
"""

from __future__ import annotations

import warnings

import pytest

from h4tracks.core.graph import TrackGraph
from h4tracks.core.io.geff_export import export_geff
from h4tracks.core.project import Project
from h4tracks.datasets.synthetic import make_movie

traccuracy = pytest.importorskip("traccuracy")


def test_traccuracy_reads_our_geff_and_scores_it_perfect_against_itself(tmp_path):
    from traccuracy import run_metrics
    from traccuracy.loaders import load_geff_data
    from traccuracy.matchers import CTCMatcher
    from traccuracy.metrics import CTCMetrics, DivisionMetrics

    m = make_movie(n_frames=8, shape=(96, 96), n_cells=5, radius=7, division_rate=0.25,
                   seed=4)
    project = Project(m.image, m.labels.copy(), graph=TrackGraph.from_ctc(m.labels, m.lineage))
    assert project.graph.n_divisions > 0
    out = export_geff(project, tmp_path / "tracks.zarr")

    def load(name: str):
        return load_geff_data(str(out / "tracks"), seg_path=str(out / "labels"),
                              seg_property="seg_id", name=name)

    gt, pred = load("gt"), load("pred")
    assert gt.graph.number_of_nodes() == len(project.graph)
    assert gt.graph.number_of_edges() == project.graph.n_edges
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # traccuracy's own notes on regionprops
        results, _matched = run_metrics(gt, pred, matcher=CTCMatcher(),
                                        metrics=[CTCMetrics(), DivisionMetrics()])
    ctc, div = (r["results"] for r in results)
    assert ctc["TRA"] == ctc["DET"] == ctc["LNK"] == 1.0 and ctc["AOGM"] == 0
    div = div["Frame Buffer 0"]
    assert div["Division F1"] == 1.0
    assert div["Total GT Divisions"] == project.graph.n_divisions
