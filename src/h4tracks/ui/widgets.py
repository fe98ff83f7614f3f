"""Small Qt building blocks of the main widget: the layer choosers and the worker bridge."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import napari
from qtpy.QtWidgets import QComboBox

_NONE = "—"


class LayerCombo(QComboBox):
    """A combobox listing the viewer's layers of one type, kept in sync with the layer list."""

    def __init__(self, viewer: napari.Viewer, layer_type: type, *, optional: bool = True) -> None:
        super().__init__()
        self._viewer = viewer
        self._type = layer_type
        self._optional = optional
        self.refresh()

    def refresh(self) -> None:
        """Re-list the layers, keeping the current choice when it still exists."""
        current = self.currentText()
        self.blockSignals(True)
        self.clear()
        if self._optional:
            self.addItem(_NONE)
        names = [lyr.name for lyr in self._viewer.layers if isinstance(lyr, self._type)]
        self.addItems(names)
        if current in names:
            self.setCurrentText(current)
        self.blockSignals(False)
        if self.currentText() != current:
            self.currentTextChanged.emit(self.currentText())

    def layer(self) -> Any | None:
        """The chosen layer, or None."""
        name = self.currentText()
        if not name or name == _NONE or name not in self._viewer.layers:
            return None
        return self._viewer.layers[name]

    def set_layer(self, layer: Any | None) -> None:
        """Choose a layer (None: nothing)."""
        self.setCurrentText(_NONE if layer is None else layer.name)


def worker_generator(fn: Callable[..., Any], *args: Any):
    """Run ``fn(report, *args)`` in a worker thread, turning ``report`` calls into yields."""
    import queue
    import threading

    q: queue.Queue = queue.Queue()
    result: dict[str, Any] = {}

    def target() -> None:
        try:
            result["value"] = fn(lambda d, n: q.put((d, n)), *args)
        except BaseException as e:  # re-raised in the worker so napari reports it
            result["error"] = e
        finally:
            q.put(None)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    while (item := q.get()) is not None:
        yield item
    thread.join()
    if "error" in result:
        raise result["error"]
    return result.get("value")

