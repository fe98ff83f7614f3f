"""Hand-made label movie shared by the project and store tests."""

from __future__ import annotations

import numpy as np


def lineage_labels(shape: tuple[int, int] = (32, 40), *, stray_pixel: bool = False) -> np.ndarray:
    """(4, Y, X) labels: a division, a gap and a few short tracks.

    t0: 1, 2   t1: 1, 3   t2: 1, 2, 4, 5   t3: 4, 5, 6, 7 (a triangle)
    """
    lab = np.zeros((4, *shape), np.uint32)
    lab[0, 2:8, 2:8] = 1
    lab[0, 20:25, 30:37] = 2
    lab[1, 3:9, 3:9] = 1
    lab[1, 12:16, 12:19] = 3
    lab[2, 4:10, 4:10] = 1
    lab[2, 20:26, 30:36] = 2
    lab[2, 12:17, 13:19] = 4
    lab[2, 26:30, 2:6] = 5
    lab[3, 2:6, 2:7] = 4
    lab[3, 8:12, 8:12] = 5
    lab[3, 13:18, 14:20] = 6
    # a triangle: centroids that are not multiples of 1/2
    for i in range(5):
        lab[3, 25 + i, 25 : 26 + i] = 7
    if stray_pixel:
        lab[3, 29, 31] = 7  # centroid (y, x) of 7 becomes (27.75, 26.625)
    return lab
