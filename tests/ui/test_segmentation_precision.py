"""The Segmentation tab's Engine and Precision, chosen with the keyboard as a user does, reach
the run and the project saved on disk (real Cellpose with the shipped demo model)."""

from __future__ import annotations

import pytest
from _events import open_window
from qtpy.QtCore import Qt
from qtpy.QtTest import QTest

from h4tracks.core.segmentation import openvino_engine as ov
from h4tracks.core.store import open_project
from h4tracks.datasets.synthetic import make_movie

pytest.importorskip("openvino")


def _choose(combo, text: str) -> None:
    """Focus ``combo`` and type the first letters of ``text`` (Qt's keyboard search)."""
    combo.setFocus(Qt.FocusReason.TabFocusReason)
    QTest.keyClicks(combo, text)
    assert combo.currentText().startswith(text), combo.currentText()


def test_precision_from_the_tab_reaches_the_saved_provenance(make_napari_viewer, qtbot,
                                                            tmp_path, monkeypatch):
    monkeypatch.setenv("H4TRACKS_CONFIG_DIR", str(tmp_path / "config"))
    movie = make_movie(n_frames=3, shape=(96, 96), n_cells=5, radius=7, seed=3)
    g = open_window(make_napari_viewer, qtbot, movie, name="precision")
    w = g.widget
    w.save(tmp_path / "p.zarr")
    qtbot.waitUntil(lambda: not w.busy, timeout=60_000)
    tab = w.segmentation_tab
    editors = tab.params_form.editors
    w.tabs.setCurrentWidget(tab)
    _choose(editors["engine"], "openvino")
    _choose(editors["precision"], "bfloat16")
    assert tab.params_form.params().precision == "bfloat16"
    g.press(tab.run_btn)
    qtbot.waitUntil(lambda: not w.busy, timeout=180_000)
    g.press(w.save_btn)
    qtbot.waitUntil(lambda: not w.busy and not w.has_unsaved_work(), timeout=60_000)

    saved = open_project(tmp_path / "p.zarr")
    step = saved.metadata.provenance[-1]
    assert step["step"] == "segment", w.status.text()
    params = step["params"]
    assert params["engine_requested"] == "openvino" and params["engine"] == "openvino"
    assert params["precision_requested"] == "bfloat16"
    expected = "bfloat16" if ov.bfloat16_supported() else "float32"
    assert params["precision"] == expected
    if expected == "float32":  # the tab says why bfloat16 did not run
        assert "bfloat16" in tab.report.text()
    assert saved.labels is not None and int(saved.labels.frame(0).max()) > 0


@pytest.mark.parametrize("supported", [True, False])
def test_the_tab_says_when_this_cpu_computes_bfloat16(make_napari_viewer, qtbot, monkeypatch,
                                                      supported):
    from h4tracks.ui import segmentation_tab

    monkeypatch.setattr(segmentation_tab, "bfloat16_likely", lambda: supported)
    movie = make_movie(n_frames=2, shape=(64, 64), n_cells=3, radius=6, seed=1)
    g = open_window(make_napari_viewer, qtbot, movie)
    tab = g.widget.segmentation_tab
    bar = g.widget.tabs.tabBar()
    qtbot.mouseClick(bar, Qt.MouseButton.LeftButton,
                     pos=bar.tabRect(g.widget.tabs.indexOf(tab)).center())
    qtbot.waitUntil(tab.isVisible)
    assert tab.precision_hint.isVisible() is supported
    if supported:
        assert "Precision → bfloat16" in tab.precision_hint.text()
