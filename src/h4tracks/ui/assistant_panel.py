"""Curation assistant panel of the Analysis tab: find suspicious cells and step through them.

A thin controller over :mod:`h4tracks.core.analysis.assistant`: *Find suspicious cells* scans
the main widget's project with the thresholds set here, marks every flag on its cell in a
points layer, and fills the kind combo; *Next* / *Previous* move the viewer to each flagged
cell of the chosen kind (frame and camera centre). The threshold editors are a
:class:`~h4tracks.ui.params_form.ParamsForm` generated from
:class:`~h4tracks.core.parameters.AssistantParams`, whose fields hold their titles, tooltips,
defaults and bounds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from qtpy.QtCore import Qt
from qtpy.QtWidgets import (
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from h4tracks.core.analysis.assistant import (
    KINDS,
    AssistantParams,
    Flag,
    SuspiciousReport,
    project_suspicious,
)
from h4tracks.errors import H4TracksError
from h4tracks.ui.markers import show_markers
from h4tracks.ui.params_form import ParamsForm

if TYPE_CHECKING:
    from h4tracks.ui.main_widget import H4TracksWidget

#: name of the points layer marking the flagged cells
MARKERS_LAYER = "suspicious cells"

#: the thresholds shown in the panel (the others keep their defaults)
THRESHOLD_FIELDS = ("border_margin", "speed_z", "area_ratio", "min_track_length",
                    "small_area_fraction")


class AssistantPanel(QWidget):
    """The *Assistant* group: thresholds, *Find suspicious cells*, and flag navigation.

    Parameters
    ----------
    main
        The plugin's main widget: its project is scanned, its viewer is moved, and its
        status line shows the messages.

    Attributes
    ----------
    suspicious : SuspiciousReport or None
        The last scan's report (None before a scan or after :meth:`clear`).
    flag_index : int
        Position of the shown flag in :meth:`current_flags` (-1: none shown yet).
    """

    def __init__(self, main: H4TracksWidget) -> None:
        super().__init__()
        self.main = main
        self.viewer = main.viewer
        self.suspicious: SuspiciousReport | None = None
        self.flag_index = -1

        # the thresholds' editors, generated from the model
        self.thresholds = ParamsForm(AssistantParams, fields=THRESHOLD_FIELDS)
        self.margin = self.thresholds.editors["border_margin"]
        self.speed_z = self.thresholds.editors["speed_z"]
        self.area_ratio = self.thresholds.editors["area_ratio"]
        self.min_track = self.thresholds.editors["min_track_length"]
        self.small_fraction = self.thresholds.editors["small_area_fraction"]
        self.find_btn = QPushButton("Find suspicious cells")
        self.find_btn.setToolTip("Scan the tracks for likely errors: tracks starting late or "
                                 "ending early away from the border, speed and area jumps, "
                                 "short tracks, very small cells and cells without a track")
        self.flag_combo = QComboBox()
        self.flag_combo.setToolTip("Kind of suspicious item to step through")
        self.prev_btn = QPushButton("Previous")
        self.prev_btn.setToolTip("Go to the previous suspicious item (frame and position)")
        self.next_btn = QPushButton("Next")
        self.next_btn.setToolTip("Go to the next suspicious item (frame and position)")
        self.flag_label = QLabel("")
        self.flag_label.setWordWrap(True)
        # the thresholds are folded away until asked for: the tab stays short
        self.thresholds_btn = QToolButton()
        self.thresholds_btn.setText("Thresholds")
        self.thresholds_btn.setCheckable(True)
        self.thresholds_btn.setArrowType(Qt.ArrowType.RightArrow)
        self.thresholds_btn.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.thresholds_btn.setToolTip("Show or hide what the assistant counts as suspicious")
        self.thresholds.setVisible(False)
        assist_box = QGroupBox("Assistant")
        aform = QFormLayout(assist_box)
        aform.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
        aform.addRow(self.find_btn)
        aform.addRow(self.thresholds_btn)
        aform.addRow(self.thresholds)
        aform.addRow("Show", self.flag_combo)
        nav = QHBoxLayout()
        nav.addWidget(self.prev_btn)
        nav.addWidget(self.next_btn)
        aform.addRow(nav)
        aform.addRow(self.flag_label)
        # no margins of its own: the group box sits in the tab exactly as when it was
        # laid out there directly
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(assist_box)

        self.find_btn.clicked.connect(lambda: self.find_suspicious())
        self.thresholds_btn.toggled.connect(self._show_thresholds)
        self.flag_combo.currentIndexChanged.connect(lambda _i: self._on_flag_kind())
        self.prev_btn.clicked.connect(lambda: self.previous_flag())
        self.next_btn.clicked.connect(lambda: self.next_flag())
        self._update_buttons()

    def _show_thresholds(self, shown: bool) -> None:
        self.thresholds.setVisible(shown)
        self.thresholds_btn.setArrowType(Qt.ArrowType.DownArrow if shown
                                         else Qt.ArrowType.RightArrow)

    def _update_buttons(self) -> None:
        has_flags = self.suspicious is not None and self.suspicious.total > 0
        self.prev_btn.setEnabled(has_flags)
        self.next_btn.setEnabled(has_flags)

    def clear(self) -> None:
        """Forget the last scan (the flags belong to a project that is no longer shown)."""
        self.suspicious = None
        self._fill_flag_combo()

    # ------------------------------------------------------------------ scanning
    def assistant_params(self) -> AssistantParams:
        """The thresholds set in the Assistant section.

        Returns
        -------
        AssistantParams
            The values of the threshold editors (the other thresholds at their defaults).

        Raises
        ------
        InputError
            A value out of the model's bounds (one sentence naming the threshold).
        """
        return AssistantParams(**self.thresholds.values())

    def find_suspicious(self) -> SuspiciousReport | None:
        """Scan the current project for suspicious cells (fast: vectorised over nodes).

        Every flag is also marked on its cell in the ``"suspicious cells"`` points layer
        (replaced on each scan).

        Returns
        -------
        SuspiciousReport or None
            The report, or None when there is no project or the scan failed (the reason
            is shown in the status line).
        """
        project = self.main.project
        if project is None:
            self.main.notify("no project: load one or choose layers first", error=True)
            return None
        try:
            self.suspicious = project_suspicious(project, self.assistant_params())
        except H4TracksError as e:
            self.main.notify(str(e), error=True)
            return None
        self._fill_flag_combo()
        # every flag marked on its cell in the viewer, with its reason
        flags = [f for items in self.suspicious.flags.values() for f in items]
        show_markers(self.main.viewer, MARKERS_LAYER, [(f.t, f.y, f.x) for f in flags],
                     [f.reason for f in flags], project.metadata.pixel_size, color="orange")
        self.main.notify(f"assistant: {self.suspicious.total} suspicious item(s)")
        return self.suspicious

    def _fill_flag_combo(self) -> None:
        # signals blocked while refilling: one _on_flag_kind at the end, not one per item
        self.flag_combo.blockSignals(True)
        self.flag_combo.clear()
        if self.suspicious is not None:
            counts = self.suspicious.counts()
            for kind, title in KINDS.items():
                self.flag_combo.addItem(f"{title} ({counts[kind]})", kind)
            # start on the first kind that has something to show
            first = next((i for i, k in enumerate(KINDS) if counts[k]), 0)
            self.flag_combo.setCurrentIndex(first)
        self.flag_combo.blockSignals(False)
        self._on_flag_kind()

    def _on_flag_kind(self) -> None:
        self.flag_index = -1
        items = self.current_flags()
        if self.suspicious is None:
            self.flag_label.setText("")
        else:
            self.flag_label.setText(f"{len(items)} item(s): press Next" if items
                                    else "nothing flagged of this kind")
        self._update_buttons()

    # ------------------------------------------------------------------ navigation
    def current_flags(self) -> list[Flag]:
        """The flags of the kind chosen in the combo.

        Returns
        -------
        list of Flag
            Empty before a scan.
        """
        kind = self.flag_combo.currentData()
        return [] if self.suspicious is None or kind is None else self.suspicious[kind]

    def next_flag(self) -> Flag | None:
        """Go to the next flagged cell (wraps around).

        Returns
        -------
        Flag or None
            The flag now shown, or None when there is none of the chosen kind.
        """
        return self._step(+1)

    def previous_flag(self) -> Flag | None:
        """Go to the previous flagged cell (wraps around).

        Returns
        -------
        Flag or None
            The flag now shown, or None when there is none of the chosen kind.
        """
        return self._step(-1)

    def _step(self, delta: int) -> Flag | None:
        items = self.current_flags()
        if not items:
            return None
        if self.flag_index < 0:
            self.flag_index = 0 if delta > 0 else len(items) - 1
        else:
            self.flag_index = (self.flag_index + delta) % len(items)
        flag = items[self.flag_index]
        self.go_to(flag)
        self.flag_label.setText(f"{self.flag_index + 1}/{len(items)}: frame {flag.t}, label "
                                f"{flag.label} — {flag.reason}")
        return flag

    def go_to(self, flag: Flag) -> None:
        """Show frame ``flag.t`` and centre the camera on the cell (no layer is added).

        Parameters
        ----------
        flag
            The flagged cell to show.
        """
        self.viewer.dims.set_current_step(0, flag.t)
        # world coordinates of the pixel through the project's layer (scale, translate)
        layer = self.main.project_labels_layer() or self.main.image_combo.layer()
        if layer is not None:
            world = layer.data_to_world([flag.t, flag.y, flag.x])
            centre = (float(world[-2]), float(world[-1]))
        else:
            centre = (flag.y, flag.x)
        # napari 0.9 moved the camera to viewer.scene.camera (viewer.camera is deprecated)
        scene = getattr(self.viewer, "scene", None)
        camera = scene.camera if scene is not None else self.viewer.camera
        camera.center = centre
