"""Shared UI fixtures: the h4tracks dock widget on a real napari viewer."""

from __future__ import annotations

import pytest

from h4tracks.ui.main_widget import H4TracksWidget


@pytest.fixture
def widget(make_napari_viewer, qtbot) -> H4TracksWidget:
    w = H4TracksWidget(make_napari_viewer())
    qtbot.addWidget(w)
    return w
