"""Parameter editors generated from a pydantic parameter model (:mod:`h4tracks.core.parameters`).

The models hold the bounds, defaults, titles and help texts; :class:`ParamsForm` turns any of
them into editors, as :mod:`h4tracks.cli.model_args` turns them into command-line options, so
none of it is written twice. Used by the tracking tab (one form per method), the
segmentation tab (the Cellpose parameters) and the analysis tab's assistant (its thresholds).
"""

from __future__ import annotations

import types
import typing
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, ValidationError
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QLabel,
    QSizePolicy,
    QSpinBox,
    QWidget,
)

from h4tracks.core.parameters import validation_message


# ---------------------------------------------------------------------------------- params
class ParamsForm(QWidget):
    """Editors for the fields of a pydantic parameter model, built from the model itself.

    ``float`` -> spin box (bounds from ``gt``/``ge``/``le``), ``float | None`` -> spin box
    whose minimum means None (shown as "auto"), ``int`` -> spin box, ``bool`` -> check box,
    ``Literal`` -> combo box. Labels are the fields' ``title``, tooltips their
    ``description``, both written in the core for the user. A field's ``ui_max`` and
    ``ui_step`` hints (``json_schema_extra``) set the top and step of a spin box where the
    model has no upper bound.
    """

    def __init__(self, model: type[BaseModel], fields: Sequence[str] | None = None) -> None:
        """Editors for ``fields`` of ``model`` (default: all fields an editor can show)."""
        super().__init__()
        self.model = model
        #: field name -> editor widget
        self.editors: dict[str, QWidget] = {}
        self._optional: set[str] = set()
        form = QFormLayout(self)
        form.setContentsMargins(0, 0, 0, 0)
        # a long label goes above its editor instead of widening the panel
        form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
        for name, field in model.model_fields.items():
            if fields is not None and name not in fields:
                continue
            editor = self._editor(name, field)
            if editor is None:
                continue  # e.g. the global method's learnt weights: not typed in by hand
            editor.setToolTip(field.description or "")
            self.editors[name] = editor
            text = field.title or name.replace("_", " ").capitalize()
            if isinstance(editor, QCheckBox):
                editor.setText(text)
                form.addRow(editor)
            else:
                label = QLabel(text)
                label.setToolTip(field.description or "")
                form.addRow(label, editor)
        self.set_params(model())  # the model's defaults (a caller may show others)

    def setVisible(self, visible: bool) -> None:  # a Qt override
        # in the method stack only the shown form counts for the height: a short form
        # (LAP) does not keep the empty space of the longest one (global)
        super().setVisible(visible)
        policy = QSizePolicy.Policy.Preferred if visible else QSizePolicy.Policy.Ignored
        self.setSizePolicy(QSizePolicy.Policy.Preferred, policy)
        self.updateGeometry()

    def _editor(self, name: str, field: Any) -> QWidget | None:
        ann = field.annotation
        args = typing.get_args(ann)
        if typing.get_origin(ann) in (typing.Union, types.UnionType) and type(None) in args:
            ann = next(a for a in args if a is not type(None))
            if typing.get_origin(ann) in (dict, list) or ann in (dict, list):
                return None
            self._optional.add(name)
        if typing.get_origin(ann) is Literal:
            combo = QComboBox()
            for v in typing.get_args(ann):
                combo.addItem(str(v), v)
            return combo
        if ann is bool:
            return QCheckBox()
        hints = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        lo, hi, strict = 0.0, float(hints.get("ui_max", 1e6)), False
        for m in field.metadata:  # annotated_types.Gt / Ge / Le / Lt
            if getattr(m, "gt", None) is not None:
                lo, strict = float(m.gt), True
            if getattr(m, "ge", None) is not None:
                lo = float(m.ge)
            for attr in ("le", "lt"):
                if getattr(m, attr, None) is not None:
                    hi = float(getattr(m, attr))
        if ann is int:
            box = QSpinBox()
            box.setRange(int(lo) + int(strict), int(min(hi, 1e6)))
            return box
        box = QDoubleSpinBox()
        box.setDecimals(2)
        step = 0.05 if hi <= 1 else (1.0 if (field.default or 0) >= 1 else 0.1)
        box.setSingleStep(float(hints.get("ui_step", step)))
        # a strict lower bound (gt=0) is reachable only as "None" when the field is optional
        lowest = lo if name in self._optional or not strict else lo + 0.01
        box.setRange(lowest, hi)
        if name in self._optional:
            # the minimum means None: the tracker chooses (the tooltip says how)
            box.setSpecialValueText("auto")
        return box

    def values(self) -> dict[str, Any]:
        """The entered values (unvalidated), by field name."""
        out: dict[str, Any] = {}
        for name, w in self.editors.items():
            if isinstance(w, QCheckBox):
                out[name] = w.isChecked()
            elif isinstance(w, QComboBox):
                out[name] = w.currentData()
            elif name in self._optional and w.value() == w.minimum():
                out[name] = None
            else:
                out[name] = w.value()
        return out

    def params(self) -> BaseModel:
        """The entered parameters as a validated model (pydantic ``ValidationError`` if not)."""
        return self.model.model_validate(self.values())

    def set_params(self, params: BaseModel) -> None:
        """Show ``params`` in the editors."""
        for name, w in self.editors.items():
            v = getattr(params, name)
            if isinstance(w, QCheckBox):
                w.setChecked(bool(v))
            elif isinstance(w, QComboBox):
                w.setCurrentIndex(max(w.findData(v), 0))
            else:
                w.setValue(w.minimum() if v is None else v)


def _validation_message(e: ValidationError) -> str:
    """The status line for bad parameters: the core's one line, fields in words."""
    return "invalid parameters: " + validation_message(e, name=lambda f: f.replace("_", " "))
