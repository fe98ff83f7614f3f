"""Cell-cycle and growth priors of the global tracker, read from a first tracking pass.

A cell that has just been born by division does not divide again for a good part of a cell
cycle, and cells grow between frames, so two daughters together are larger than their
mother was a frame before. Both are measured on the movie itself: the growth from the
unambiguous pairs of consecutive frames (:func:`~.global_problem.estimate_defaults`), the
cell-cycle length from the lineage of a first pass (:func:`lineage_age`).
"""

from __future__ import annotations

import numpy as np

__all__ = ["MIN_CYCLES", "lineage_age"]

MIN_CYCLES = 5  # complete cycles needed before the movie's own cycle length is trusted


def lineage_age(
    t: np.ndarray, parent: np.ndarray, child: np.ndarray, n: int
) -> tuple[np.ndarray, float]:
    """Age of every node in the lineage of the links ``(parent, child)`` and the age below
    which a division is unlikely.

    Parameters
    ----------
    t
        (N,) frame of every node.
    parent, child
        Node indices of the links (a parent with two children divides).
    n
        Number of nodes.

    Returns
    -------
    age : (N,) ndarray
        Frames since the node's track was born by a division (0 in the daughters' first
        frame); inf where the track started without a parent.
    young : float
        Half the median length of the complete cell cycles (birth by division to division)
        of this lineage; 0 (no prior) with fewer than :data:`MIN_CYCLES` of them.
    """
    age = np.full(n, np.inf)
    if parent.size == 0 or n == 0:
        return age, 0.0
    n_children = np.bincount(parent, minlength=n)
    parent_of = np.full(n, -1)
    parent_of[child] = parent
    order = np.argsort(t, kind="stable")
    bounds = np.searchsorted(t[order], np.arange(int(t.max()) + 2))
    # frame by frame, so a parent's age is known before its children's (links go forward)
    for f in range(int(t.max()) + 1):
        nodes = order[bounds[f]:bounds[f + 1]]
        p = parent_of[nodes]
        has = p >= 0
        pp = p[has]
        a = np.full(nodes.size, np.inf)
        a[has] = np.where(n_children[pp] == 2, 0.0, age[pp] + (t[nodes[has]] - t[pp]))
        age[nodes] = a
    mothers = np.flatnonzero(n_children == 2)
    cycles = age[mothers][np.isfinite(age[mothers])] + 1
    young = 0.5 * float(np.median(cycles)) if cycles.size >= MIN_CYCLES else 0.0
    return age, young
