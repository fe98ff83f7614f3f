"""Every tracker, every input: empty frames, one-frame movies, one-cell movies.

Small label movies of square cells moving 1 px per frame, far apart (no ambiguity), with
cells missing in some frames. Every tracker is run through :func:`track_project` and must
return a graph whose nodes are exactly the labelled cells and whose links join the same
cell in consecutive frames (or across an allowed gap), never across a longer empty stretch.
"""

from __future__ import annotations

import numpy as np
import pytest
from _tracking_data import graph_edges

from h4tracks.core.graph import TrackGraph
from h4tracks.core.project import Project
from h4tracks.core.tracking import (
    GlobalParams,
    LapParams,
    OverlapParams,
    fit_weights,
    retrack_with_corrections,
    track_global,
    track_project,
    track_single_cell,
)
from h4tracks.core.tracking.global_solve import window_plan, window_size
from h4tracks.errors import H4TracksError, InputError

T = 12
SIZE = 64
ROWS = (8, 28, 48)  # top row of each cell: 20 px apart, far from the border


def make(present: np.ndarray) -> np.ndarray:
    """(T, 64, 64) uint32 label movie; ``present[c, t]``: cell ``c + 1`` is in frame t."""
    present = np.asarray(present, bool).reshape(-1, present.shape[-1])
    n_cells, n_t = present.shape
    movie = np.zeros((n_t, SIZE, SIZE), np.uint32)
    for c in range(n_cells):
        y = ROWS[c]
        for t in np.flatnonzero(present[c]).tolist():
            x = 8 + t  # 1 px per frame
            movie[t, y:y + 6, x:x + 6] = c + 1
    return movie


def frames(n_cells: int, n_t: int, empty: tuple[int, ...] = ()) -> np.ndarray:
    p = np.ones((n_cells, n_t), bool)
    p[:, list(empty)] = False
    return p


def _single_in_middle() -> np.ndarray:
    p = frames(3, T)
    p[1:, 4:8] = False  # frames 4..7 hold exactly one cell
    return p


def _single_every_other() -> np.ndarray:
    p = frames(3, T)
    p[1:, 1::2] = False  # odd frames hold one cell
    return p


MOVIES = {
    "all_empty": frames(3, T, tuple(range(T))),
    "first3_empty": frames(3, T, (0, 1, 2)),
    "last8_empty": frames(3, T, tuple(range(4, T))),
    "last_empty": frames(3, T, (T - 1,)),
    "first_and_last_empty": frames(3, T, (0, T - 1)),
    "middle_gap1": frames(3, T, (5,)),
    "middle_gap2": frames(3, T, (5, 6)),
    "middle_gap4": frames(3, T, (4, 5, 6, 7)),
    "interleaved_empty": frames(3, T, (1, 4, 7, 10)),
    "alternate_empty": frames(3, T, tuple(range(1, T, 2))),
    "only_first_frame": frames(3, T, tuple(range(1, T))),
    "only_last_frame": frames(3, T, tuple(range(T - 1))),
    "only_middle_frame": frames(3, T, tuple(f for f in range(T) if f != 6)),
    "one_frame": frames(3, 1),
    "one_frame_one_cell": frames(1, 1),
    "one_frame_empty": frames(1, 1, (0,)),
    "two_frames": frames(3, 2),
    "two_frames_first_empty": frames(3, 2, (0,)),
    "one_cell": frames(1, T),
    "one_cell_last8_empty": frames(1, T, tuple(range(4, T))),
    "one_cell_gaps": frames(1, T, (2, 5, 6, 9)),
    "single_cell_frames": _single_in_middle(),
    "single_cell_every_other": _single_every_other(),
}

METHODS = {
    "lap": LapParams(),
    # a division distance below the 20 px between cells: a cell reappearing next to another
    # is otherwise (rightly) taken for its daughter
    "lap_gap2_div": LapParams(max_gap=2, divisions=True, division_distance=10),
    "overlap": OverlapParams(),
    "overlap_iou_nodiv": OverlapParams(measure="iou", divisions=False),
    "global": GlobalParams(),
    "global_none": GlobalParams(motion="none"),
    "global_local": GlobalParams(motion="local"),
    "global_drift": GlobalParams(motion="drift"),
    "global_gap0": GlobalParams(max_gap=0),
    "global_window3": GlobalParams(window=3, max_gap=0),
    "global_window3_gap2": GlobalParams(window=3, max_gap=2),
}


def _method(params) -> str:
    return {LapParams: "lap", OverlapParams: "overlap", GlobalParams: "global"}[type(params)]


def _allowed_gap(params) -> int:
    """Largest number of skipped frames a link of this tracker may cross."""
    return 0 if isinstance(params, OverlapParams) else params.max_gap


def cells_of(movie: np.ndarray) -> set[tuple[int, int]]:
    return {(t, int(v)) for t in range(movie.shape[0]) for v in np.unique(movie[t]) if v}


def check_graph(g: TrackGraph, movie: np.ndarray, gap: int) -> None:
    """Nodes = the labelled cells; links join one cell across at most ``gap`` skipped
    frames, over no frame holding it; every consecutive appearance is linked."""
    assert isinstance(g, TrackGraph)
    assert set(g) == cells_of(movie)
    edges = graph_edges(g)
    for (tp, lp), (tc, lc) in edges:
        assert lp == lc, f"link joins two different cells: {(tp, lp)} -> {(tc, lc)}"
        assert 1 <= tc - tp <= gap + 1, f"link {(tp, lp)} -> {(tc, lc)} crosses a long gap"
        between = [(t, lp) in g for t in range(tp + 1, tc)]
        assert not any(between), f"link {(tp, lp)} -> {(tc, lc)} skips its own cell"
    cells = cells_of(movie)
    need = {((t, lab), (t + 1, lab)) for t, lab in cells if (t + 1, lab) in cells}
    assert need <= edges, f"missing links: {sorted(need - edges)}"
    # a cell in no division: at most one parent and one child (no merges, no branches)
    assert g.n_divisions == 0


@pytest.mark.parametrize("mname", list(METHODS))
@pytest.mark.parametrize("movie_name", list(MOVIES))
def test_track_project_every_input(movie_name: str, mname: str) -> None:
    movie = make(MOVIES[movie_name])
    params = METHODS[mname]
    project = Project(movie.astype(np.uint16), movie)
    calls: list[tuple[int, int]] = []
    g = track_project(project, _method(params), params.model_copy(),
                      progress=lambda d, n: calls.append((d, n)))
    check_graph(g, movie, _allowed_gap(params))
    assert project.graph == g
    assert all(0 <= d <= n for d, n in calls)
    present = MOVIES[movie_name]
    for c in np.flatnonzero(present.all(axis=1)).tolist():  # visible in every frame:
        track = {g.track_id((t, c + 1)) for t in range(movie.shape[0])}
        assert len(track) == 1  # one track ...
        assert len(g.track_nodes(track.pop())) == movie.shape[0]  # ... with T - 1 links


@pytest.mark.parametrize("movie_name", ["middle_gap1", "interleaved_empty",
                                        "one_cell_gaps", "single_cell_every_other"])
def test_global_closes_one_frame_gaps(movie_name: str) -> None:
    """With ``max_gap=1`` a cell missing for one frame keeps its track; with the default
    (0, as LAP) it does not."""
    movie = make(MOVIES[movie_name])
    g = track_global(movie, GlobalParams(max_gap=1))
    cells = cells_of(movie)
    gaps = {((t, lab), (t + 2, lab)) for t, lab in cells
            if (t + 1, lab) not in cells and (t + 2, lab) in cells}
    assert gaps and gaps <= graph_edges(g)
    assert not gaps & graph_edges(track_global(movie, GlobalParams()))


@pytest.mark.parametrize("movie_name", list(MOVIES))
def test_single_cell_follows_until_it_vanishes(movie_name: str) -> None:
    movie = make(MOVIES[movie_name])
    project = Project(movie.astype(np.uint16), movie)
    cells = sorted(cells_of(movie))
    if not cells:
        with pytest.raises(InputError, match="no cell"):
            track_single_cell(project, project.graph, 0, 1)
        return
    t0, lab = cells[0]
    links = track_single_cell(project, project.graph, t0, lab)
    t = t0
    while (t + 1, lab) in cells:
        t += 1
    assert links == [((s, lab), (s + 1, lab)) for s in range(t0, t)]


@pytest.mark.parametrize("max_gap", [0, 1, 2, 4])
@pytest.mark.parametrize("window", [3, 4, 5, 7, 10])
@pytest.mark.parametrize("n_frames", [1, 2, 3, 9, 12, 31])
def test_window_plan_decides_every_link_once(n_frames: int, window: int, max_gap: int):
    """Windows commit consecutive stretches covering the movie, and every link into a frame
    a window commits (parent up to max_gap + 1 frames back) lies inside that window."""
    plan = list(window_plan(n_frames, window, max_gap))
    assert plan[0][0] == 0 and plan[-1][1] == plan[-1][2] == n_frames
    decided = 0
    for s, e, commit in plan:
        assert e - s <= window_size(window, max_gap)
        assert decided < commit or n_frames == 0  # progress
        assert s <= max(0, decided - 1 - max_gap)  # parents of the new frames are inside
        decided = commit


# ------------------------------------------------------------------ learning step
LEARN = {  # movie, curated frames
    "last8_empty": (MOVIES["last8_empty"], [0, 1, 2]),
    "first3_empty": (MOVIES["first3_empty"], [3, 4, 5]),
    "middle_gap4": (MOVIES["middle_gap4"], [1, 2, 3]),
    "single_cell_frames": (MOVIES["single_cell_frames"], [4, 5, 6]),
    "one_cell": (MOVIES["one_cell"], [0, 1]),
    "alternate_empty_pairs": (frames(3, T, (3, 4, 5, 9, 10)), [0, 1, 2]),
}


@pytest.mark.parametrize("motion", ["none", "drift", "local"])
@pytest.mark.parametrize("name", list(LEARN))
def test_learning_with_empty_frames(name: str, motion: str) -> None:
    present, curated = LEARN[name]
    movie = make(present)
    project = Project(movie.astype(np.uint16), movie)
    params = GlobalParams(motion=motion)
    track_project(project, "global", params)
    project.set_curated(curated)
    weights = fit_weights(project, params=params)
    assert all(np.isfinite(v) for v in weights.values())
    g, w = retrack_with_corrections(project, params=params, return_weights=True)
    assert w == weights
    check_graph(g, movie, params.max_gap)


@pytest.mark.parametrize(
    ("present", "curated", "match"),
    [
        (MOVIES["all_empty"], [0, 1], "no links"),
        (MOVIES["last8_empty"], [6, 7], "no links"),
        (MOVIES["middle_gap4"], [4, 5, 6], "no links"),
    ],
)
def test_learning_from_empty_curated_frames_says_so(present, curated, match) -> None:
    movie = make(present)
    project = Project(movie.astype(np.uint16), movie)
    track_project(project, "global")
    project.set_curated(curated)
    for call in (fit_weights, retrack_with_corrections):
        with pytest.raises(H4TracksError, match=match) as err:
            call(project)
        assert "\n" not in str(err.value)
