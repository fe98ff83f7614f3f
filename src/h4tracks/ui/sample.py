"""npe2 sample data: a synthetic movie of migrating, dividing, touching cells."""

from __future__ import annotations

from h4tracks.core.graph import TrackGraph
from h4tracks.datasets.synthetic import SyntheticConfig, make_movie


def migrating_cells() -> list[tuple]:
    """Image, ground-truth labels and ground-truth tracks of a 40-frame synthetic movie."""
    movie = make_movie(SyntheticConfig(n_frames=40, shape=(256, 256), n_cells=15, seed=1))
    data, parents = TrackGraph.from_ctc(movie.labels, movie.lineage).to_napari()
    return [
        (movie.image, {"name": "synthetic image"}, "image"),
        (movie.labels, {"name": "synthetic labels (ground truth)"}, "labels"),
        (data, {"name": "synthetic tracks (ground truth)", "graph": parents}, "tracks"),
    ]
