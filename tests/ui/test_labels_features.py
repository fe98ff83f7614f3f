"""The project's Labels layer carries the features of the frame shown (a shown napari window,
real mouse moves): one row per cell keyed by label value, the values of the Tracks layer's
row of that cell; replaced when the frame changes and after an edit and its undo; napari's
status bar shows them over a cell."""

from __future__ import annotations

import numpy as np
import pytest
from _clicks import centre
from _events import Gui, dividing_movie, open_window

from h4tracks.core.tracking import unlink


@pytest.fixture(scope="module")
def movie():
    return dividing_movie(12)


@pytest.fixture
def gui(make_napari_viewer, qtbot, movie):
    g = open_window(make_napari_viewer, qtbot, movie, name="cells", frame_interval=5.0,
                    time_unit="min")
    g.frame(0)
    g.fit((64, 64), 128)
    yield g
    g.widget.ask_unsaved = lambda _project: "discard"
    g.stop()
    assert not g.unexpected, g.unexpected


def _assert_frame_features(g: Gui, t: int) -> None:
    """The Labels layer's features are frame ``t``'s cells with the Tracks layer's values."""
    w = g.widget
    labels_layer, tracks_layer = w.project_labels_layer(), w.tracks_view.layer()
    feats = labels_layer.features
    frame = np.asarray(w.project.labels.frame(t))
    cells = np.unique(frame[frame > 0])
    assert np.array_equal(feats["index"].to_numpy(), cells)
    assert list(feats.columns[1:]) == list(tracks_layer.features.columns)
    data = tracks_layer.data
    for k, label in enumerate(cells.tolist()):
        tid = w.project.graph.track_id((t, label))
        row = np.flatnonzero((data[:, 0] == tid) & (data[:, 1] == t))
        assert row.size == 1, (t, label)
        mine, theirs = feats.iloc[k], tracks_layer.features.iloc[row[0]]
        assert mine["track_id"] == tid
        for name in tracks_layer.features.columns:
            assert mine[name] == theirs[name], (t, label, name)


def test_labels_layer_features_follow_the_frame_and_the_edits(gui):
    g, w = gui, gui.widget
    layer = w.project_labels_layer()
    _assert_frame_features(g, 0)
    g.frame(6)
    _assert_frame_features(g, 6)
    assert w.tracks_view.labels_features.last_seconds < 0.5

    # hovering a cell: napari's status bar lists its features
    g.viewer.layers.selection.active = layer
    g.fit((64, 64), 128)  # again: the window has its final size now
    frame = np.asarray(w.project.labels.frame(6))
    # the cell nearest the middle of the view, at a pixel well inside it
    label = min(layer.features["index"].tolist(),
                key=lambda lab: np.hypot(*(np.subtract(centre(frame, lab), 64))))
    g.move(*map(float, centre(frame, label)))
    tid = w.project.graph.track_id((6, label))
    # what napari's status bar shows for the mouse position (its status thread asks the
    # active layer the same way; it only runs once Qt's event loop has started)
    status = layer.get_status(g.viewer.cursor.position, dims_displayed=[1, 2],
                              world=True)["coordinates"]
    assert f": {label}; " in status, status
    assert f"track_id: {tid}" in status and "speed:" in status and "mean_speed:" in status

    # an unlink cuts the cell out of its track: a one-cell track now, features updated
    project = w.project
    assert w.apply_action(unlink(project, (6, label), (6, label))), w.status.text()
    new_tid = project.graph.track_id((6, label))
    assert new_tid != tid
    row = layer.features[layer.features["index"] == label].iloc[0]
    assert row["track_id"] == new_tid and row["n_points"] == 1 and row["speed"] == 0
    _assert_frame_features(g, 6)
    assert w.undo()
    assert layer.features[layer.features["index"] == label].iloc[0]["track_id"] \
        == project.graph.track_id((6, label))
    _assert_frame_features(g, 6)
