"""Synthetic 2D time-lapse movies of migrating, dividing, touching cells with exact ground truth.

The simulation is an agent model: each cell is an ellipse that performs a persistent random walk,
grows, relaxes its shape, is pushed away from its neighbours by a soft repulsion and, after a
minimum age, divides into two daughters along its long axis. Each frame is rasterised by giving
every pixel to the cell with the smallest normalised elliptical distance, so touching cells share
a border. The intensity image is rendered like a widefield fluorescence acquisition: textured
cells with a nucleus-like blob and a faint rim, uneven illumination, a gaussian PSF, Poisson shot
noise, gaussian read noise and a camera offset/gain.

The ground truth follows the Cell Tracking Challenge (CTC) convention: label value == track id,
and a lineage table with rows ``(track_id, first_frame, last_frame, parent_track_id)``.

The parameters, :class:`SyntheticConfig`, live in the light :mod:`h4tracks.datasets.parameters`
(the command line generates its options from them) and are re-exported here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from h4tracks.datasets._simulation import Simulation
from h4tracks.datasets.parameters import SyntheticConfig

__all__ = ["SyntheticConfig", "SyntheticMovie", "make_movie"]


@dataclass
class SyntheticMovie:
    """A synthetic movie and its exact ground truth.

    Attributes
    ----------
    image
        ``(T, Y, X)`` intensity movie in ``config.dtype``.
    labels
        ``(T, Y, X)`` uint32 label movie; the label value is the track id, 0 is background.
    lineage
        ``(N, 4)`` int64 rows ``(track_id, first_frame, last_frame, parent_track_id or 0)``
        sorted by track id, as in a CTC ``man_track.txt``. Track ids are ``1..N``.
    config
        The configuration that produced the movie.
    """

    image: np.ndarray
    labels: np.ndarray
    lineage: np.ndarray
    config: SyntheticConfig

    @property
    def n_tracks(self) -> int:
        """Number of tracks."""
        return int(self.lineage.shape[0])

    @property
    def n_divisions(self) -> int:
        """Number of tracks with exactly two daughter tracks."""
        parents = self.lineage[:, 3]
        _, counts = np.unique(parents[parents > 0], return_counts=True)
        return int(np.count_nonzero(counts == 2))


def make_movie(config: SyntheticConfig | None = None, **overrides: Any) -> SyntheticMovie:
    """Simulate a time-lapse movie of migrating, dividing and touching cells.

    Parameters
    ----------
    config
        Movie parameters; defaults to ``SyntheticConfig()``.
    **overrides
        Fields of :class:`SyntheticConfig` to replace, e.g. ``make_movie(n_frames=10)``.

    Returns
    -------
    SyntheticMovie
        Image, label movie (label == track id) and lineage table.

    Raises
    ------
    InputError
        If a parameter is invalid or an override names no config field.
    """
    config = SyntheticConfig.resolve(config, overrides, "synthetic movie parameter")
    image, labels, lineage = Simulation(config).run()
    return SyntheticMovie(image=image, labels=labels, lineage=lineage, config=config)
