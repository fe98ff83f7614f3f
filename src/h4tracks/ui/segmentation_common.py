"""Small pieces shared by the segmentation tab and its panels.

A word-wrapped label that keeps the height its text needs, combo boxes narrower than their
longest entry, and the status text of a Cellpose job. Used by
:mod:`h4tracks.ui.segmentation_tab`, :mod:`h4tracks.ui.segmentation_models` and
:mod:`h4tracks.ui.training_panel`.
"""

from __future__ import annotations

import sys
from typing import Any

from qtpy.QtWidgets import QComboBox, QLabel


def _compact(combo: QComboBox, chars: int = 14) -> None:
    """Let a combo box with long entries be narrower than its longest entry (elided)."""
    combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
    combo.setMinimumContentsLength(chars)


def _loading(text: str) -> str:
    """The status of a Cellpose job: the first one also loads torch and Cellpose (seconds),
    which the panel deliberately did not import when it opened."""
    return text if "cellpose.models" in sys.modules else f"loading Cellpose, then {text}"


class WrappedLabel(QLabel):
    """A word-wrapped label that keeps the height its text needs at its current width.

    In the scrolling tab panel a plain word-wrapped label can be squeezed to fewer lines
    than its text needs (its minimum height is guessed for a wider label); this one sets
    its minimum height from its width whenever either or the text changes.
    """

    def __init__(self, text: str = "") -> None:
        super().__init__(text)
        self.setWordWrap(True)

    def setText(self, text: str) -> None:  # a Qt override
        super().setText(text)
        self._fit()

    def resizeEvent(self, event: Any) -> None:
        super().resizeEvent(event)
        self._fit()

    def _fit(self) -> None:
        height = self.heightForWidth(self.width()) if self.text() else 0
        if height >= 0 and height != self.minimumHeight():
            self.setMinimumHeight(height)
