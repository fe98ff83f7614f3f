"""Model choice of the segmentation tab: the model combos and the add / remove model glue.

:class:`ModelChoiceMixin` is a mixin of
:class:`~h4tracks.ui.segmentation_tab.SegmentationTab`: it builds the model combo, the
Add / Remove buttons and the model's description, keeps the model list (and the training
panel's "Start from" combo) equal to the model registry, and shows a chosen model's own
parameters in the tab's parameter boxes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from qtpy.QtWidgets import QComboBox, QHBoxLayout, QMessageBox, QPushButton

from h4tracks.core.segmentation.models import ModelEntry, ModelRegistry
from h4tracks.errors import H4TracksError
from h4tracks.ui.model_dialog import AddModelDialog
from h4tracks.ui.segmentation_common import WrappedLabel, _compact

if TYPE_CHECKING:
    from h4tracks.ui.main_widget import H4TracksWidget

_SCRATCH = "from scratch"


class ModelChoiceMixin:
    """Model choice of the segmentation tab (a mixin of its QWidget).

    Uses the tab's ``main``, its parameter boxes (``diameter``, ``flow_threshold``,
    ``cellprob_threshold``, ``min_size``) and the training panel's ``base_combo``.
    """

    main: H4TracksWidget
    _entries: dict[str, ModelEntry]

    def _build_model_choice(self) -> QHBoxLayout:
        """The model combo, the Add / Remove buttons (returned as a row) and the model's
        description."""
        self.model_combo = QComboBox()
        self.model_combo.setToolTip("Cellpose model to segment with")
        _compact(self.model_combo)
        self.add_model_btn = QPushButton("Add Cellpose model…")
        self.add_model_btn.setToolTip("Add a model trained elsewhere with Cellpose 3 (its "
                                      "weights file) to the list")
        self.remove_model_btn = QPushButton("Remove")
        self.remove_model_btn.setToolTip("Remove this added or trained model from the list "
                                         "(its file on disk is kept)")
        self.model_info = WrappedLabel()
        model_row = QHBoxLayout()
        model_row.addWidget(self.add_model_btn, 1)
        model_row.addWidget(self.remove_model_btn)
        return model_row

    # ------------------------------------------------------------------ models
    def refresh_models(self, select: str | None = None) -> None:
        """Re-read the model registry into the combos, choosing ``select`` (else keep the
        current choice, else the default demo model)."""
        registry = ModelRegistry()
        try:
            entries = registry.entries()
        except H4TracksError as e:  # corrupt registry file: built-ins still work
            self.main.notify(str(e), error=True)
            entries = registry.builtin_entries()
        current = select or self.model_combo.currentData() or registry.default_entry().name
        base = self.base_combo.currentData() if self.base_combo.count() else current
        self._entries = {e.name: e for e in entries}
        for combo in (self.model_combo, self.base_combo):
            combo.blockSignals(True)
            combo.clear()
        self.base_combo.addItem(_SCRATCH, None)
        for e in entries:
            self.model_combo.addItem(f"{e.name} ({e.kind})", e.name)
            self.base_combo.addItem(e.name, e.name)
        for combo, name in ((self.model_combo, current), (self.base_combo, base)):
            i = combo.findData(name)
            combo.setCurrentIndex(max(i, 0))
            combo.blockSignals(False)
        self._on_model_chosen()

    def current_entry(self) -> ModelEntry:
        """The chosen model's registry entry."""
        return self._entries[self.model_combo.currentData()]

    def _on_model_chosen(self, _index: int = 0) -> None:
        if self.model_combo.currentData() not in self._entries:
            return
        e = self.current_entry()
        self.diameter.setValue(e.diameter or 0.0)
        self.flow_threshold.setValue(e.flow_threshold)
        self.cellprob_threshold.setValue(e.cellprob_threshold)
        self.min_size.setValue(e.min_size)
        self.remove_model_btn.setEnabled(e.kind in ("custom", "trained"))
        self.model_info.setText(e.description or (e.path or ""))

    def make_add_model_dialog(self) -> AddModelDialog:
        """The (not yet shown) dialog registering a custom model in the registry."""
        return AddModelDialog(lambda **v: ModelRegistry().add_custom(**v), self)

    def add_custom_model(self) -> ModelEntry | None:
        """Ask for a weights file and register it; select the new model on success."""
        dialog = self.make_add_model_dialog()
        if not dialog.exec() or dialog.entry is None:
            return None
        self.refresh_models(select=dialog.entry.name)
        self.main.notify(f"added model {dialog.entry.name}")
        return dialog.entry

    def remove_model(self, name: str | None = None, *, confirm: bool = True) -> bool:
        """Forget a custom/trained model (default: the chosen one); its file stays."""
        name = name or self.model_combo.currentData()
        if confirm and QMessageBox.question(
            self, "Remove model", f"Forget the model {name!r}? Its weights file is kept."
        ) != QMessageBox.StandardButton.Yes:
            return False
        try:
            ModelRegistry().remove(name)
        except H4TracksError as e:
            self.main.notify(str(e), error=True)
            return False
        self.refresh_models(select=ModelRegistry().default_entry().name)
        self.main.notify(f"removed model {name}")
        return True
