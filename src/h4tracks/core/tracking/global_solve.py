"""The integer program of the global tracker, solved window after window.

Variables of one window are ``[links, divisions, appear, disappear]`` (binary); every cell has
exactly one of (appear, incoming link, being a daughter) and exactly one of (disappear,
outgoing link, dividing). :func:`solve_windows` cuts a long movie into overlapping windows
(:func:`window_plan`): each window keeps the decisions about the frames committed by the
previous one fixed and commits all but its last ``overlap`` frames.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from h4tracks.errors import H4TracksError

__all__ = ["FixedBounds", "solve_milp", "solve_windows", "window_plan", "window_size"]


def solve_milp(
    n: int, lp: np.ndarray, lc: np.ndarray, lcost: np.ndarray, dm: np.ndarray,
    dc1: np.ndarray, dc2: np.ndarray, dcost: np.ndarray, app: np.ndarray, dis: np.ndarray,
    lb: np.ndarray, ub: np.ndarray, time_limit: float,
) -> np.ndarray:
    """Solve one window with HiGHS (``scipy.optimize.milp``).

    Parameters
    ----------
    n
        Number of cells of the window (local indices ``0 … n-1``).
    lp, lc, lcost
        Candidate links: parent, child (local indices) and cost.
    dm, dc1, dc2, dcost
        Candidate divisions: mother, daughters (local indices) and cost.
    app, dis
        (n,) appear and disappear costs.
    lb, ub
        Bounds of all variables ``[links, divisions, appear, disappear]``.
    time_limit
        Solver time limit (s).

    Returns
    -------
    np.ndarray
        (V,) bool: the chosen variables. A window without cells has no variables and the
        empty solution.
    """
    ne, nd = lp.size, dm.size
    c = np.concatenate([lcost, dcost, app, dis])
    nv = c.size
    if n == 0 or nv == 0:  # nothing to decide (e.g. a stretch of empty frames)
        return np.zeros(nv, bool)
    try:
        from scipy.optimize import Bounds, LinearConstraint, milp
    except ImportError as exc:  # scipy < 1.9
        raise H4TracksError(
            "global tracking needs scipy.optimize.milp (scipy >= 1.9 with HiGHS)"
        ) from exc
    from scipy.sparse import coo_matrix

    iv = np.arange(nv)
    # rows 0..n-1: incoming slot, rows n..2n-1: outgoing slot
    rows = np.concatenate([
        lc, n + lp,  # links
        dc1, dc2, n + dm,  # divisions
        np.arange(n), n + np.arange(n),  # appear, disappear
    ])
    cols = np.concatenate([
        iv[:ne], iv[:ne],
        iv[ne:ne + nd], iv[ne:ne + nd], iv[ne:ne + nd],
        iv[ne + nd:ne + nd + n], iv[ne + nd + n:],
    ])
    a = coo_matrix((np.ones(rows.size), (rows, cols)), shape=(2 * n, nv)).tocsr()
    res = milp(
        c, constraints=LinearConstraint(a, 1, 1), integrality=np.ones(nv),
        bounds=Bounds(lb, ub), options={"time_limit": float(time_limit), "disp": False},
    )
    if res.x is None:
        raise H4TracksError(
            f"global tracking: the MILP solver (HiGHS) found no solution ({res.message}); "
            "check fixed links for conflicts or raise time_limit"
        )
    return np.round(res.x).astype(bool)


@dataclass
class FixedBounds:
    """Bounds from the caller: links/divisions forced in (lo) or out (hi False)."""

    link_lo: np.ndarray
    link_hi: np.ndarray
    div_lo: np.ndarray
    div_hi: np.ndarray


def _overlap(max_gap: int) -> int:
    """Frames at the end of a window left undecided for the next window."""
    return max(2, max_gap + 1)


def window_size(window: int, max_gap: int) -> int:
    """The window length actually used: ``window``, but at least ``overlap + max_gap + 2``
    frames, the fewest that let every window commit a frame while the next one still holds
    the parents (up to ``max_gap + 1`` frames back) of every link into the frames it
    decides."""
    return max(int(window), _overlap(max_gap) + max_gap + 2)


def window_plan(n_frames: int, window: int, max_gap: int) -> Iterator[tuple[int, int, int]]:
    """Windows ``(start, end, commit)``: frames ``start <= t < end`` are solved together and
    the links into frames ``t < commit`` are kept (the last window commits everything).

    The next window starts ``max_gap + 1`` frames before ``commit``, so that every link into
    a frame it decides has both its cells inside it.
    """
    w, ov = window_size(window, max_gap), _overlap(max_gap)
    s = 0
    while True:
        e = min(n_frames, s + w)
        commit = n_frames if e == n_frames else e - ov
        yield s, e, commit
        if e == n_frames:
            return
        s = commit - 1 - max_gap


def solve_windows(
    t: np.ndarray, n_frames: int, max_gap: int, app_all: np.ndarray, dis_all: np.ndarray,
    lp: np.ndarray, lc: np.ndarray, lcost: np.ndarray, d1: np.ndarray, d2: np.ndarray,
    dcost: np.ndarray, fixed: FixedBounds, window: int, time_limit: float,
    tick: Callable[[], None],
) -> tuple[np.ndarray, np.ndarray]:
    """Chosen links and divisions (bool masks over the candidates), window after window.

    Parameters
    ----------
    t
        (N,) frame of every cell.
    n_frames, max_gap
        Movie length and the largest number of skipped frames of a link.
    app_all, dis_all
        (N,) appear and disappear costs of the whole movie.
    lp, lc, lcost
        Candidate links (cell indices) and their costs.
    d1, d2, dcost
        Candidate divisions as indices of the daughter links into ``lp, lc``; their costs.
    fixed
        Caller's bounds on links and divisions.
    window, time_limit
        Frames per window (see :func:`window_size`) and solver time limit per window (s).
    tick
        Called after every window (progress, cancellation).
    """
    n = t.size
    dm, dc1, dc2 = lp[d1], lc[d1], lc[d2]
    chosen_l = np.zeros(lp.size, bool)
    chosen_d = np.zeros(d1.size, bool)
    decided_before = 0  # nodes of frames < this have their incoming slot decided
    for s, e, commit in window_plan(n_frames, window, max_gap):
        in_nodes = (t >= s) & (t < e)
        nodes = np.flatnonzero(in_nodes)
        local = np.full(n, -1)
        local[nodes] = np.arange(nodes.size)
        lsel = np.flatnonzero(in_nodes[lp] & in_nodes[lc])
        dsel = np.flatnonzero(in_nodes[dm] & in_nodes[dc1] & in_nodes[dc2])
        app, dis = app_all[nodes].copy(), dis_all[nodes].copy()
        if e < n_frames:
            dis[t[nodes] == e - 1] = 0.0  # the window's end is not the track's end
        llo, lhi = fixed.link_lo[lsel].astype(float), fixed.link_hi[lsel].astype(float)
        dlo, dhi = fixed.div_lo[dsel].astype(float), fixed.div_hi[dsel].astype(float)
        alo, ahi = np.zeros(nodes.size), np.ones(nodes.size)
        if decided_before > s:
            # links and divisions into already decided frames keep their decision ...
            ldec = t[lc[lsel]] < decided_before
            llo[ldec] = lhi[ldec] = chosen_l[lsel][ldec]
            ddec = t[dc1[dsel]] < decided_before
            dlo[ddec] = dhi[ddec] = chosen_d[dsel][ddec]
            # ... and a decided cell whose parent lies before the window "appears" for free
            has_in = np.zeros(n, bool)
            has_in[lc[lsel][chosen_l[lsel] & ldec]] = True
            has_in[dc1[dsel][chosen_d[dsel] & ddec]] = True
            has_in[dc2[dsel][chosen_d[dsel] & ddec]] = True
            nd = t[nodes] < decided_before
            alo[nd] = ahi[nd] = (~has_in[nodes[nd]]).astype(float)
            app[nd] = 0.0
        x = solve_milp(
            nodes.size, local[lp[lsel]], local[lc[lsel]], lcost[lsel],
            local[dm[dsel]], local[dc1[dsel]], local[dc2[dsel]], dcost[dsel], app, dis,
            np.concatenate([llo, dlo, alo, np.zeros(nodes.size)]),
            np.concatenate([lhi, dhi, ahi, np.ones(nodes.size)]),
            time_limit,
        )
        xl, xd = x[:lsel.size], x[lsel.size:lsel.size + dsel.size]
        keep_l = t[lc[lsel]] < commit
        keep_d = t[dc1[dsel]] < commit
        chosen_l[lsel[keep_l]] = xl[keep_l]
        chosen_d[dsel[keep_d]] = xd[keep_d]
        decided_before = commit
        tick()
    return chosen_l, chosen_d
