"""The dock widget fits a 1366×768 laptop screen and speaks plain language (run under Xvfb).

Measured on the widget docked in a shown napari window of 1366×768: the dock's minimum height
leaves room for the viewer, its width does not jump between tabs, no tab needs a horizontal
scroll bar, and no label or tooltip shows a file name, a module path or a formula-like
"= something" (the texts are for biologists, the details are in the docs).
"""

from __future__ import annotations

import re

import pytest
from qtpy.QtWidgets import (
    QAbstractButton,
    QAbstractSpinBox,
    QApplication,
    QComboBox,
    QDockWidget,
    QDoubleSpinBox,
    QGroupBox,
    QLabel,
    QLineEdit,
    QWidget,
)

from h4tracks.core.tracking import GlobalParams, LapParams, OverlapParams
from h4tracks.ui.main_widget import H4TracksWidget

SCREEN = (1366, 768)
#: a tab's content must fit in this width (the dock is about 470 px wide at 1366×768)
MAX_PAGE_WIDTH = 420

_FORBIDDEN = re.compile(r"docs/|\.md\b|\.py\b|h4tracks\.|= [a-z]")


@pytest.fixture
def docked(make_napari_viewer, qtbot):
    """The widget docked on the right of a shown napari window resized to 1366×768."""
    viewer = make_napari_viewer(show=True)
    widget = H4TracksWidget(viewer)
    viewer.window.add_dock_widget(widget, name="h4tracks", area="right")
    window = widget.window()  # the napari main window the dock lives in
    window.resize(*SCREEN)
    dock = widget.parent()
    while dock is not None and not isinstance(dock, QDockWidget):
        dock = dock.parent()
    assert dock is not None
    qtbot.waitUntil(lambda: window.width() == SCREEN[0], timeout=5000)
    return widget, dock


def _settle() -> None:
    for _ in range(5):
        QApplication.processEvents()


def _measure(widget: H4TracksWidget, dock: QDockWidget) -> dict[str, dict[str, int]]:
    out = {}
    for i in range(widget.tabs.count()):
        widget.tabs.setCurrentIndex(i)
        _settle()
        page = widget.tabs.widget(i)
        out[widget.tabs.tabText(i)] = {
            "hint_w": dock.sizeHint().width(), "hint_h": dock.sizeHint().height(),
            "min_w": dock.minimumSizeHint().width(), "min_h": dock.minimumSizeHint().height(),
            "width": dock.width(), "page_min_w": page.minimumSizeHint().width(),
            "tabs_min_w": widget.tabs.minimumSizeHint().width(),
            "viewport_w": widget.scroll.viewport().width(),
        }
    return out


def test_dock_fits_a_laptop_screen_on_every_tab(docked):
    widget, dock = docked
    sizes = _measure(widget, dock)
    for tab, s in sizes.items():
        assert s["min_h"] <= 700, (tab, s)  # the dock never forces a taller window
        assert s["hint_h"] <= SCREEN[1], (tab, s)
        assert s["page_min_w"] <= MAX_PAGE_WIDTH, (tab, s)  # long texts wrap or elide
        # the tab fits the scroll area's width: no horizontal scrolling
        assert s["tabs_min_w"] <= s["viewport_w"], (tab, s)
    for key in ("hint_w", "min_w", "width"):
        values = [s[key] for s in sizes.values()]
        assert max(values) <= 1.15 * min(values), (key, sizes)  # no jump between tabs


def test_tables_grow_with_the_panel(docked):
    widget, _dock = docked
    for table in (widget.analysis_tab.view, widget.evaluation_tab.results):
        policy = table.sizePolicy()
        assert policy.verticalPolicy() == policy.Policy.Expanding
        assert 0 < table.minimumHeight() <= 160


def _visible_texts(root: QWidget) -> list[tuple[str, str]]:
    """(where, text) of everything a user can read: labels, buttons, tooltips, placeholders,
    special values of spin boxes, combo entries, group titles, tab names."""
    texts: list[tuple[str, str]] = []
    for w in [root, *root.findChildren(QWidget)]:
        name = type(w).__name__
        if w.toolTip():
            texts.append((f"{name} tooltip", w.toolTip()))
        if isinstance(w, (QLabel, QAbstractButton)):
            texts.append((name, w.text()))
        if isinstance(w, QLineEdit):
            texts.append((f"{name} placeholder", w.placeholderText()))
        if isinstance(w, QAbstractSpinBox):
            texts.append((f"{name} special value", w.specialValueText()))
        if isinstance(w, QComboBox):
            texts.extend((f"{name} item", w.itemText(i)) for i in range(w.count()))
        if isinstance(w, QGroupBox):
            texts.append((name, w.title()))
    tabs = root.tabs
    texts.extend(("tab", tabs.tabText(i)) for i in range(tabs.count()))
    return texts


def test_texts_are_plain_language(widget):
    texts = _visible_texts(widget)
    assert len(texts) > 100  # the walk reaches every tab, hidden forms included
    bad = [(where, text) for where, text in texts if _FORBIDDEN.search(text)]
    assert not bad, bad


def test_parameter_forms_use_titles_and_auto(widget):
    for key, model in (("lap", LapParams), ("overlap", OverlapParams),
                       ("global", GlobalParams)):
        form = widget.tracking_tab.forms[key]
        layout = form.layout()
        for name, editor in form.editors.items():
            field = model.model_fields[name]
            assert field.title and field.description, name
            assert editor.toolTip() == field.description
            label = layout.labelForField(editor)
            shown = editor.text() if label is None else label.text()
            assert shown == field.title, name
            if isinstance(editor, QDoubleSpinBox) and field.default is None:
                assert editor.specialValueText().startswith("auto"), name
                assert editor.text().startswith("auto"), name  # None is shown as auto
