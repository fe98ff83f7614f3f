"""Evaluation tab: score segmentation or tracking over a frame range and export the report.

A thin controller over :mod:`h4tracks.core.evaluation`. By default the curated project is
the reference and its automatic snapshot the result (:func:`curated_vs_auto`: how much did
curation change?); alternatively the project is scored against an external reference — a
project, a label movie (TIFF) or a CTC ground-truth folder. The work runs in the main
widget's background worker; the report is shown as a table and exported as JSON plus
Markdown and HTML.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from qtpy.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QSizePolicy,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from h4tracks.core.evaluation import EvaluationReport, curated_vs_auto, evaluate
from h4tracks.core.frames import parse_frames
from h4tracks.errors import H4TracksError, InputError
from h4tracks.ui.markers import show_markers

if TYPE_CHECKING:
    from h4tracks.ui.main_widget import H4TracksWidget

#: reference choices of the combo
AUTO_REFERENCE = "curated vs automatic snapshot"
EXTERNAL_REFERENCE = "external reference (project, label TIFF, CTC folder)"


class EvaluationTab(QWidget):
    """Frame range, reference choice, Evaluate segmentation / tracking, results, export."""

    def __init__(self, main: H4TracksWidget) -> None:
        super().__init__()
        self.main = main
        #: the last report
        self.report: EvaluationReport | None = None

        self.frames_edit = QLineEdit()
        self.frames_edit.setPlaceholderText("all frames (or A:B, B excluded)")
        self.frames_edit.setToolTip("Consecutive frames to score: leave empty for all "
                                    "frames, or A:B for frames A to B-1")
        self.ref_combo = QComboBox()
        self.ref_combo.addItems([AUTO_REFERENCE, EXTERNAL_REFERENCE])
        self.ref_combo.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.ref_combo.setMinimumContentsLength(14)
        self.ref_combo.setToolTip("Curated vs automatic: the curated project is the reference, "
                                  "the snapshot kept when segmentation/tracking ran is scored. "
                                  "External: the project is scored against a reference")
        self.ref_path = QLineEdit()
        self.ref_path.setPlaceholderText("reference project, label TIFF or CTC folder")
        self.file_btn = QPushButton("File…")
        self.file_btn.setToolTip("Choose a label movie (TIFF)")
        self.folder_btn = QPushButton("Folder…")
        self.folder_btn.setToolTip("Choose an h4tracks project (.zarr) or a Cell Tracking "
                                   "Challenge ground-truth folder")
        ref_row = QHBoxLayout()
        ref_row.addWidget(self.ref_path, 1)
        ref_row.addWidget(self.file_btn)
        ref_row.addWidget(self.folder_btn)

        self.eval_btn = QPushButton("Evaluate")
        self.eval_btn.setToolTip(
            "Score the segmentation (precision, recall, F1, AP, IoU, Cell Tracking Challenge "
            "SEG) and, when both sides have tracks, the tracking (TRA, DET, divisions) in one "
            "go; the errors found are marked in the viewer")
        run_row = QHBoxLayout()
        run_row.addWidget(self.eval_btn)

        self.results = QTableWidget(0, 2)
        self.results.setHorizontalHeaderLabels(["", "value"])
        self.results.verticalHeader().setVisible(False)
        self.results.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode
                                                             .ResizeToContents)
        self.results.horizontalHeader().setStretchLastSection(True)
        self.results.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        # the table grows with the panel, and is small when the panel is small
        self.results.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.results.setMinimumHeight(120)
        self.summary = QLabel("")
        self.summary.setWordWrap(True)
        self.export_btn = QPushButton("Export report…")
        self.export_btn.setToolTip("Save the report in three files: a web page (HTML), a "
                                   "text version (Markdown) and a machine-readable one (JSON)")

        form = QFormLayout()
        form.addRow("Frames", self.frames_edit)
        form.addRow("Compare", self.ref_combo)
        form.addRow("Reference", ref_row)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addLayout(run_row)
        layout.addWidget(self.summary)
        layout.addWidget(self.results, 1)
        layout.addWidget(self.export_btn)

        self.ref_combo.currentIndexChanged.connect(lambda _i: self._update_widgets())
        self.file_btn.clicked.connect(self._choose_file)
        self.folder_btn.clicked.connect(self._choose_folder)
        self.eval_btn.clicked.connect(lambda: self.evaluate())
        self.export_btn.clicked.connect(lambda: self.export_report())
        self._update_widgets()

    # ------------------------------------------------------------------ widgets
    def _update_widgets(self) -> None:
        external = self.ref_combo.currentText() == EXTERNAL_REFERENCE
        for w in (self.ref_path, self.file_btn, self.folder_btn):
            w.setEnabled(external)
        self.export_btn.setEnabled(self.report is not None)

    def _choose_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Reference label movie", "",
                                              "TIFF (*.tif *.tiff);;All files (*)")
        if path:
            self.set_reference(path)

    def _choose_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Reference project or CTC folder")
        if path:
            self.set_reference(path)

    def set_reference(self, path: str | Path | None) -> None:
        """Use an external reference (None: the automatic snapshot)."""
        if path is None:
            self.ref_combo.setCurrentText(AUTO_REFERENCE)
        else:
            self.ref_path.setText(str(path))
            self.ref_combo.setCurrentText(EXTERNAL_REFERENCE)

    # ------------------------------------------------------------------ evaluation
    def evaluate(self) -> Any:
        """Score segmentation and tracking together in the background (the worker or None).
        Tracking is left out, with a note, when a side has no tracks."""
        return self._run(segmentation=True, tracking=True)

    def evaluate_segmentation(self) -> Any:
        """Score the segmentation in the background (returns the worker or None)."""
        return self._run(segmentation=True, tracking=False)

    def evaluate_tracking(self) -> Any:
        """Score the tracking in the background (returns the worker or None)."""
        return self._run(segmentation=False, tracking=True)

    def _run(self, *, segmentation: bool, tracking: bool) -> Any:
        project = self.main.project
        if project is None:
            self.main.notify("no project: load one or choose layers first", error=True)
            return None
        try:
            text = self.frames_edit.text().strip()
            frames = parse_frames(text or None, project.n_frames)
            external = self.ref_combo.currentText() == EXTERNAL_REFERENCE
            reference = self.ref_path.text().strip()
            if external and not reference:
                raise InputError("choose a reference file or folder first")
            if not external and project.auto is None:
                # same message as the core, but before starting a worker
                curated_vs_auto(project, frames)
        except H4TracksError as e:
            self.main.notify(str(e), error=True)
            return None

        if tracking and segmentation:
            # both sides need links for tracking scores; otherwise segmentation alone
            auto = project.auto
            tracking = external or (auto is not None and auto.graph.n_edges > 0
                                    and project.graph.n_edges > 0)

        def work(_report: Any) -> EvaluationReport:
            if external:
                return evaluate(project, reference, frames, segmentation=segmentation,
                                tracking=tracking)
            return curated_vs_auto(project, frames, segmentation=segmentation,
                                   tracking=tracking)

        def done(report: EvaluationReport) -> None:
            self.show_report(report)
            self.mark_errors(report, project, external)

        what = " and ".join(w for w, on in (("segmentation", segmentation),
                                            ("tracking", tracking)) if on)
        self.eval_btn.setEnabled(False)
        return self.main.run_in_worker(
            work, text=f"evaluating {what}…", done=done,
            finally_=lambda: self.eval_btn.setEnabled(True))

    def mark_errors(self, report: EvaluationReport, project: Any, external: bool) -> Any:
        """Show the errors of ``report`` as a Points layer ("evaluation errors") on the cells
        they concern (replaced by the next evaluation); returns the layer or None."""
        from h4tracks.core.evaluation.flags import flagged_points

        auto = project.auto
        if external:  # the project is the result; the reference is not loaded
            result, reference = project.graph, None
        else:
            result, reference = (None if auto is None else auto.graph), project.graph
        points, kinds = flagged_points(report.errors, result, reference)
        return show_markers(self.main.viewer, "evaluation errors", points, kinds,
                            project.metadata.pixel_size)

    def show_report(self, report: EvaluationReport) -> None:
        """Show a report's numbers in the results table."""
        self.report = report
        # the report's own summary rows: the table shows what the Markdown export says
        rows: list[tuple[str, str, bool]] = []
        for title, items in report._rows():
            rows.append((title, "", True))
            rows += [(k, v, False) for k, v in items]
        self.results.setRowCount(len(rows))
        for i, (k, v, header) in enumerate(rows):
            key = QTableWidgetItem(k)
            if header:
                font = key.font()
                font.setBold(True)
                key.setFont(font)
            self.results.setItem(i, 0, key)
            self.results.setItem(i, 1, QTableWidgetItem(v))
        parts = []
        if report.segmentation is not None:
            s = report.segmentation
            parts.append(f"F1 {s.f1:.3f}, SEG {s.seg:.3f}")
        if report.tracking is not None:
            t = report.tracking
            parts.append(f"TRA {t.tra:.3f}, DET {t.det:.3f}")
        msg = (f"frames {report.frames[0]}-{report.frames[-1]}: " + "; ".join(parts)
               if parts else "nothing scored")
        self.summary.setText(msg + ("\n" + "\n".join(report.notes) if report.notes else ""))
        self.main.notify(f"evaluation: {msg}")
        self._update_widgets()

    def result_values(self) -> dict[str, str]:
        """The results table as ``{row name: value}`` (section titles left out)."""
        out = {}
        for i in range(self.results.rowCount()):
            v = self.results.item(i, 1).text()
            if v:
                out[self.results.item(i, 0).text()] = v
        return out

    # ------------------------------------------------------------------ export
    def export_report(self, path: str | Path | None = None) -> list[Path] | None:
        """Write the report as ``<name>.json``, ``<name>.md`` and ``<name>.html`` (file dialog
        without ``path``); returns the written files."""
        if self.report is None:
            self.main.notify("evaluate first", error=True)
            return None
        if path is None:
            path, _ = QFileDialog.getSaveFileName(self, "Export evaluation report",
                                                  "evaluation.json", "JSON (*.json)")
            if not path:
                return None
        base = Path(path)
        base = base.with_suffix("") if base.suffix.lower() in (".json", ".md", ".html") else base
        out = [base.with_name(base.name + ext) for ext in (".json", ".md", ".html")]
        try:
            if not base.parent.is_dir():
                raise InputError(f"folder {base.parent} does not exist")
            self.report.to_json(out[0])
            out[1].write_text(self.report.to_markdown() + "\n", encoding="utf-8")
            out[2].write_text(self.report.to_html() + "\n", encoding="utf-8")
        except (H4TracksError, OSError) as e:
            self.main.notify(str(e), error=True)
            return None
        self.main.notify(f"wrote {out[0]} and the same report as Markdown and HTML")
        return out
