"""One call to evaluate a result against a reference, and a readable/serialisable report."""

from __future__ import annotations

import html
import json
import math
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from h4tracks.core.evaluation.references import _frame_range, load
from h4tracks.core.evaluation.segmentation import (
    FrameOverlap,
    SegmentationMetrics,
    frame_overlap,
    read_frame,
    segmentation_from_overlaps,
)
from h4tracks.core.evaluation.tracking import TrackingMetrics, tracking_from_overlaps
from h4tracks.core.frames import ranges_text
from h4tracks.core.outputs import atomic_file
from h4tracks.core.project import jsonable
from h4tracks.errors import InputError

__all__ = ["EvaluationReport", "evaluate"]


@dataclass
class EvaluationReport:
    """Result of :func:`evaluate`.

    Attributes
    ----------
    frames
        The evaluated frames (consecutive).
    result_name, reference_name
        Where result and reference came from.
    segmentation
        Segmentation scores, or None when not requested.
    tracking
        Tracking scores, or None when not requested or a side has no lineage.
    errors
        Lists of errors: ``fn_nodes``, ``fp_nodes``, ``merged`` (result objects covering
        several reference objects), ``missing_edges``, ``extra_edges``, ``semantic_edges``,
        ``missed_divisions``, ``false_divisions`` (tracking) and ``seg_missed``,
        ``seg_false_positives`` (segmentation, IoU 0.5).
    provenance
        Automatic steps that produced the result, when known.
    curated_frames
        Which of the evaluated frames the user curated (curated vs automatic: the frames
        where the score measures the user's corrections).
    notes
        Remarks on what was (not) evaluated.
    """

    frames: list[int]
    result_name: str = ""
    reference_name: str = ""
    segmentation: SegmentationMetrics | None = None
    tracking: TrackingMetrics | None = None
    errors: dict[str, list[Any]] = field(default_factory=dict)
    provenance: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    curated_frames: list[int] | None = None

    # ------------------------------------------------------------------ serialisation
    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly dict of everything in the report (NaN becomes None)."""

        out = {
            "frames": [self.frames[0], self.frames[-1]] if self.frames else [],
            "n_frames": len(self.frames),
            "result": self.result_name,
            "reference": self.reference_name,
            "segmentation": None if self.segmentation is None else self.segmentation.as_dict(),
            "tracking": None if self.tracking is None else self.tracking.as_dict(),
            "errors": {k: [list(x) for x in v] for k, v in self.errors.items()},
            "provenance": self.provenance,
            "curated_frames": self.curated_frames,
            "notes": self.notes,
        }
        return _nan_to_none(jsonable(out))

    def to_json(self, path: str | os.PathLike[str] | None = None) -> str:
        """The report as JSON text, also written to ``path`` if given.

        The file is written completely or not at all (see
        :func:`h4tracks.core.outputs.atomic_file`) and never inside a project.
        """
        text = json.dumps(self.as_dict(), indent=2)
        if path is not None:
            with atomic_file(path, "w", encoding="utf-8") as fh:
                fh.write(text + "\n")
        return text

    def _rows(self) -> list[tuple[str, list[tuple[str, str]]]]:
        """Sections of (name, value) rows shared by the Markdown and HTML summaries."""
        sections = []
        head = [
            ("Result", self.result_name or "-"),
            ("Reference", self.reference_name or "-"),
            ("Frames", f"{self.frames[0]}-{self.frames[-1]} ({len(self.frames)})"
             if self.frames else "-"),
        ]
        if self.curated_frames is not None:

            head.append(("Curated among them", f"{ranges_text(self.curated_frames) or 'none'}"
                         f" ({len(self.curated_frames)})"))
        sections.append(("Evaluation", head))
        s = self.segmentation
        if s is not None:
            rows = [
                ("Frames scored", str(len(s.frames))),
                ("Reference / predicted objects", f"{s.n_reference} / {s.n_predicted}"),
                ("TP / FP / FN (IoU ≥ 0.5)", f"{s.tp} / {s.fp} / {s.fn}"),
                ("Precision", _fmt(s.precision)), ("Recall", _fmt(s.recall)),
                ("F1", _fmt(s.f1)), ("AP@0.5", _fmt(s.average_precision)),
                ("mean AP 0.5–0.95", _fmt(s.mean_ap)),
                ("Mean matched IoU", _fmt(s.mean_iou)), ("Mean matched Dice", _fmt(s.mean_dice)),
                ("SEG (CTC)", _fmt(s.seg)),
            ]
            rows += [(f"AP@{k:.2f}", _fmt(v)) for k, v in s.ap_sweep.items()]
            sections.append(("Segmentation", rows))
        t = self.tracking
        if t is not None:
            rows = [
                ("TRA", _fmt(t.tra)), ("DET", _fmt(t.det)),
                ("AOGM / AOGM₀", f"{t.aogm:g} / {t.aogm0:g}"),
                ("Reference nodes / edges", f"{t.n_reference_nodes} / {t.n_reference_edges}"),
                ("Result nodes / edges", f"{t.n_result_nodes} / {t.n_result_edges}"),
                ("False negatives (×10)", str(t.false_negatives)),
                ("False positives (×1)", str(t.false_positives)),
                ("Splits (×5)", str(t.splits)),
                ("Edge deletions (×1)", str(t.edge_deletions)),
                ("Edge additions (×1.5)", str(t.edge_additions)),
                ("Semantic changes (×1)", str(t.semantic_changes)),
                ("Divisions reference / result / found",
                 f"{t.reference_divisions} / {t.result_divisions} / {t.divisions_found}"),
                ("Division precision / recall / F1",
                 f"{_fmt(t.division_precision)} / {_fmt(t.division_recall)} / "
                 f"{_fmt(t.division_f1)}"),
            ]
            sections.append(("Tracking", rows))
        err = [(k.replace("_", " "), f"{len(v)}: {_preview(v)}") for k, v in self.errors.items()
               if v]
        if err:
            sections.append(("Errors", err))
        if self.provenance:
            sections.append(("Provenance of the result", [
                (str(p.get("step", "?")), ", ".join(
                    f"{k}={v}" for k, v in p.items() if k != "step")) for p in self.provenance
            ]))
        if self.notes:
            sections.append(("Notes", [("", n) for n in self.notes]))
        return sections

    def to_markdown(self) -> str:
        """A readable Markdown summary."""
        out = ["# Evaluation report", ""]
        for title, rows in self._rows():
            out += [f"## {title}", "", "| | |", "|---|---|"]
            out += [f"| {k} | {v.replace('|', '/')} |" for k, v in rows]
            out.append("")
        return "\n".join(out)

    def to_html(self) -> str:
        """A readable, self-contained HTML summary."""
        out = ["<html><head><meta charset='utf-8'><title>Evaluation report</title></head>",
               "<body><h1>Evaluation report</h1>"]
        for title, rows in self._rows():
            out.append(f"<h2>{html.escape(title)}</h2><table>")
            out += [f"<tr><th align='left'>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>"
                    for k, v in rows]
            out.append("</table>")
        out.append("</body></html>")
        return "\n".join(out)


def _fmt(x: float) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.4f}"


def _preview(items: list[Any], n: int = 8) -> str:
    shown = ", ".join(str(tuple(x)) for x in items[:n])
    return shown + (", …" if len(items) > n else "")


def _nan_to_none(obj: Any) -> Any:
    if isinstance(obj, float) and math.isnan(obj):
        return None
    if isinstance(obj, dict):
        return {k: _nan_to_none(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_nan_to_none(v) for v in obj]
    return obj


def evaluate(
    result: Any,
    reference: Any,
    frames: Iterable[int] | None = None,
    segmentation: bool = True,
    tracking: bool = True,
) -> EvaluationReport:
    """Evaluate a result against a reference.

    Parameters
    ----------
    result, reference
        :class:`~h4tracks.core.evaluation.references.TrackingData`, a Project, a project
        path, a CTC folder, a label movie file or a ``(T, Y, X)`` array (see
        :func:`~h4tracks.core.evaluation.references.load`).
    frames
        Consecutive frame indices to evaluate (e.g. ``range(10, 20)``); default all frames.
    segmentation, tracking
        What to score. Tracking is skipped (with a note) when a side has no lineage.

    Raises
    ------
    InputError
        Shapes differ, the frame range is invalid, tracking is asked for fewer than 2 frames,
        or result or reference has no object in the frames.
    """
    res, ref = load(result), load(reference)
    if res.shape[1:] != ref.shape[1:] or res.n_frames != ref.n_frames:
        raise InputError(
            f"The result has shape (T, Y, X) = {res.shape} but the reference has {ref.shape}; "
            "they must match frame for frame."
        )
    if not (segmentation or tracking):
        raise InputError("Nothing to evaluate: both segmentation and tracking are off.")
    ts = _frame_range(frames, ref.n_frames)
    report = EvaluationReport(frames=ts, result_name=res.name, reference_name=ref.name,
                              provenance=list(res.provenance))
    if tracking and not (res.has_tracks and ref.has_tracks):
        side = "result" if not res.has_tracks else "reference"
        report.notes.append(f"Tracking not scored: the {side} has no lineage (labels only).")
        tracking = False
        if not segmentation:
            raise InputError(f"Cannot score tracking: the {side} has no lineage.")
    if tracking and len(ts) < 2:
        raise InputError(f"Tracking evaluation needs at least 2 frames, got {len(ts)}.")

    # one pass over the frames: the same overlaps serve tracking and (full) segmentation
    overlaps: list[FrameOverlap] = [
        frame_overlap(read_frame(ref.labels, t), read_frame(res.labels, t), t) for t in ts
    ]
    n_res = sum(ov.pred_labels.size for ov in overlaps)
    n_ref = sum(ov.ref_labels.size for ov in overlaps)
    where = f"frames {ts[0]}-{ts[-1]}"
    if n_res == 0:
        raise InputError(f"The result ({res.name or 'result'}) has no segmented cells in "
                         f"{where}; there is nothing to evaluate.")
    if n_ref == 0:
        raise InputError(f"The reference ({ref.name or 'reference'}) has no cells in {where}.")

    if segmentation:
        if ref.seg is not None:
            seg_ts = [t for t in ts if t in ref.seg]
            report.notes.append(
                f"Segmentation scored on the {len(seg_ts)} annotated SEG frame(s) of the "
                "reference; only annotated cells count as reference objects."
            )
            seg_ov = [
                frame_overlap(np.asarray(ref.seg[t]), read_frame(res.labels, t), t)
                for t in seg_ts
            ]
        else:
            seg_ov = overlaps
        report.segmentation = segmentation_from_overlaps(seg_ov)
        report.errors["seg_missed"] = report.segmentation.missed
        report.errors["seg_false_positives"] = report.segmentation.false_positives
    if tracking:
        assert res.edges is not None and ref.edges is not None
        tra = tracking_from_overlaps(overlaps, res.edges, ref.edges)
        report.tracking = tra
        for k in ("fn_nodes", "fp_nodes", "merged", "missing_edges", "extra_edges",
                  "semantic_edges", "missed_divisions", "false_divisions"):
            report.errors[k] = getattr(tra, k)
    return report
