"""Which frames a rerun of a batch segmentation may skip, from the project's provenance."""

from __future__ import annotations

import json

from h4tracks.core.parameters import SegmentParams
from h4tracks.core.pipeline.state import segment_signature, segmented_frames


def _entry(frames, **params):
    """A segmentation's provenance entry as a saved project holds it (JSON)."""
    return json.loads(json.dumps(
        {"step": "segment", "params": {"model": "m", "frames": frames, **params}}))


def test_a_fallback_of_engine_or_precision_does_not_redo_the_frames():
    asked = SegmentParams(precision="bfloat16")
    signature = segment_signature("m", asked.model_dump())
    # bfloat16 was asked for, float32 ran (a CPU without bfloat16 units): frames are done
    ran = {**asked.model_dump(), "engine": "onnx", "engine_requested": "auto",
           "precision": "float32", "precision_requested": "bfloat16"}
    assert segmented_frames([_entry([[0, 5]], **ran)], signature) == set(range(5))
    # other parameters asked for: not done
    other = segment_signature("m", SegmentParams(precision="float32").model_dump())
    assert segmented_frames([_entry([[0, 5]], **ran)], other) == set()


def test_frames_segmented_before_precision_existed_count_as_float32():
    params = SegmentParams().model_dump()
    old = {k: v for k, v in params.items() if k != "precision"}
    old.update(engine="onnx", engine_requested="auto")
    provenance = [_entry([[0, 3]], **old)]
    assert segmented_frames(provenance, segment_signature("m", params)) == {0, 1, 2}
    bf16 = segment_signature("m", SegmentParams(precision="bfloat16").model_dump())
    assert segmented_frames(provenance, bf16) == set()
