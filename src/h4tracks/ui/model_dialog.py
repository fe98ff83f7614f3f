"""Dialog registering a custom Cellpose weights file as a model."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from qtpy.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from h4tracks.errors import H4TracksError

_FILTER = "Cellpose weights (*.pth *.pt *);;All files (*)"


class AddModelDialog(QDialog):
    """Ask for a weights file, a name and default parameters; register on OK.

    Parameters
    ----------
    register
        ``register(**values)`` adds the model (e.g. ``ModelRegistry.add_custom``); an
        :class:`~h4tracks.errors.H4TracksError` it raises is shown in the dialog, which stays
        open so the user can fix the entry (nothing is registered).
    """

    def __init__(self, register: Callable[..., Any], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Add custom Cellpose model")
        self._register = register
        self.entry: Any = None

        self.path_edit = QLineEdit()
        self.path_edit.setPlaceholderText("Cellpose 3 weights file (.pth)")
        self.browse_btn = QPushButton("Browse…")
        row = QHBoxLayout()
        row.addWidget(self.path_edit, 1)
        row.addWidget(self.browse_btn)
        self.name_edit = QLineEdit()
        self.diameter = QDoubleSpinBox()
        self.diameter.setRange(0.0, 1000.0)
        self.diameter.setSpecialValueText("model's own")
        self.diameter.setToolTip("Typical cell diameter in pixels; leave at 0 to use the size "
                                 "the model was trained on")
        self.flow = QDoubleSpinBox()
        self.flow.setRange(0.0, 10.0)
        self.flow.setSingleStep(0.1)
        self.flow.setValue(0.4)
        self.cellprob = QDoubleSpinBox()
        self.cellprob.setRange(-6.0, 6.0)
        self.cellprob.setSingleStep(0.5)
        self.min_size = QSpinBox()
        self.min_size.setRange(0, 1_000_000)
        self.min_size.setValue(15)

        form = QFormLayout()
        form.addRow("Weights file", row)
        form.addRow("Name", self.name_edit)
        form.addRow("Diameter (px)", self.diameter)
        form.addRow("Flow threshold", self.flow)
        form.addRow("Cell probability threshold", self.cellprob)
        form.addRow("Minimum size (px)", self.min_size)
        self.error = QLabel("")
        self.error.setWordWrap(True)
        self.error.setStyleSheet("color: #e05050")
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.error)
        layout.addWidget(self.buttons)

        self.browse_btn.clicked.connect(self._browse)
        self.buttons.accepted.connect(self.try_accept)
        self.buttons.rejected.connect(self.reject)

    def _browse(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Cellpose model weights", "", _FILTER)
        if path:
            self.path_edit.setText(path)
            if not self.name_edit.text().strip():
                self.name_edit.setText(Path(path).stem)

    def values(self) -> dict[str, Any]:
        """The entered fields as keyword arguments of ``ModelRegistry.add_custom``."""
        return {
            "name": self.name_edit.text().strip(),
            "path": self.path_edit.text().strip(),
            "diameter": self.diameter.value() or None,
            "flow_threshold": self.flow.value(),
            "cellprob_threshold": self.cellprob.value(),
            "min_size": self.min_size.value(),
        }

    def try_accept(self) -> bool:
        """Register the model; close on success, else show why and stay open."""
        values = self.values()
        if not values["path"]:
            self.error.setText("Choose a weights file.")
            return False
        try:
            self.entry = self._register(**values)
        except H4TracksError as e:
            self.error.setText(str(e))
            return False
        self.accept()
        return True
