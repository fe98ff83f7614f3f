"""One movie's segmentation split into blocks of frames over idle dask workers.

When a run has more workers than movies, the workers without a movie would idle while a long
movie is segmented frame after frame. The movie's task (which holds the project's lock and
is the only writer) then hands its frames to the cluster in blocks of ``save_every`` frames:
each block task opens only the project's image, read-only (no verification, no
recovery: the project may be mid-save), computes the masks with
:func:`~h4tracks.core.segmentation.engine.compute_segmentation` (the call
``segment_project`` makes for each of its blocks) and leaves them in a ``.npy`` file; the movie
task applies the blocks in frame order, each as one step with its own provenance entry, and
saves after each, as ``segment_project`` with checkpoints does. The project and its
provenance are therefore the same as from a sequential run, and a run killed midway resumes
after the last applied block.

The movie's task secedes from its worker's thread while it waits
(:func:`distributed.worker_client`), so its worker runs blocks too.
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["BLOCK_STEP", "segment_block", "segment_split"]

#: the step name of a block's worker event (``{"movie", "step", "phase", "frames", "pid"}``)
BLOCK_STEP = "segment-block"


#: how long a block task waits for a two-rename save of its project to finish
_SWAP_WAIT_S = 10.0


def _image_only(path: Path) -> Any:
    """The image of the project at ``path`` (read-only, lazy) as a project with nothing else.

    A block task reads while the movie's task saves the project after each applied block.
    :func:`~h4tracks.core.store.open_project` would compare the files with the manifest
    (a reader whose reads straddle a save's directory swap sees an old manifest next to a
    new graph, a "damaged" project) and would finish an interrupted two-rename swap (moving
    the old version back while the writer is between its renames, which makes the writer's
    second rename fail). The image is all a block needs, and a save never changes it (its
    chunks are hard links in every version), so only the image array is opened.
    """
    import zarr

    from h4tracks.core.dirswap import ASIDE, siblings
    from h4tracks.core.project import Project

    deadline = time.monotonic() + _SWAP_WAIT_S
    # where directories cannot be exchanged in one call, a save renames the current version
    # aside and then the new one into place: between the two the project is missing for a
    # moment; wait for the writer instead of failing the block (or recovering under it)
    while (not (path / "image" / "zarr.json").is_file() and siblings(path, ASIDE)
           and time.monotonic() < deadline):
        time.sleep(0.05)
    return Project(zarr.open_array(path / "image", mode="r", zarr_format=3))


def segment_block(project_path: str, model: str | None, params: dict[str, Any],
                  frames: list[int], out: str, movie: str, topic: str) -> tuple[Any, Any]:
    """Segment ``frames`` of a project without changing it; the masks go to ``out``.

    Runs in a dask worker. Only the project's image is opened (read-only, lazy; see
    :func:`_image_only`), so a save of the project by the movie's task may run meanwhile.

    Parameters
    ----------
    project_path
        The project's ``.zarr`` directory.
    model
        The model as the pipeline names it: a registry name, a weights file, or None for
        the default model.
    params
        The resolved Cellpose parameters (``SegmentParams.model_dump()``).
    frames
        The frames of this block; curated frames are segmented too (the caller has left
        out those it keeps).
    out
        The ``.npy`` file the block's masks are written to (atomically): a (N, Y, X) uint32
        array of the N frames segmented, in the order of the report's ``frames``.
    movie
        The movie's name, for the worker event.
    topic
        The topic of the worker event (``{"movie", "step", "phase", "frames", "pid"}``, step
        :data:`BLOCK_STEP`) logged once the masks are written; none outside a worker.

    Returns
    -------
    tuple
        The block's :class:`~h4tracks.core.segmentation.engine.SegmentReport` and its
        provenance entry (a dict).

    Raises
    ------
    FileNotFoundError
        If the project has no image (waited for up to ``_SWAP_WAIT_S`` when a save is
        between its two renames).
    H4TracksError
        If the model is unknown or its weights file unusable (:class:`InputError` included),
        if a frame is out of range, or if ``out`` cannot be written.
    pydantic.ValidationError
        If ``params`` are not valid ``SegmentParams``.
    """
    from h4tracks.core.outputs import atomic_file
    from h4tracks.core.parameters import SegmentParams
    from h4tracks.core.segmentation.engine import compute_segmentation, resolve_model

    project = _image_only(Path(project_path))
    run = compute_segmentation(project, resolve_model(model), params=SegmentParams(**params),
                               frames=frames, cores=1, overwrite_curated=True)
    done = run.report.frames
    masks = np.empty((len(done), *project.shape[1:]), np.uint32)
    for i, t in enumerate(done):
        masks[i] = run.masks[t]
    with atomic_file(Path(out), "wb") as fh:
        np.save(fh, masks)
    with contextlib.suppress(ValueError, ImportError):  # outside a worker: no event
        from distributed import get_worker

        get_worker().log_event(topic, {"movie": movie, "step": BLOCK_STEP, "phase": "ran",
                                       "frames": list(done), "pid": os.getpid()})
    return run.report, run.provenance


def segment_split(project: Any, model: str | None, params: dict[str, Any],
                  frames: Sequence[int], *, block_size: int, folder: Path, movie: str,
                  save: Callable[[], None], topic: str) -> None:
    """Segment ``frames`` of ``project`` in blocks on the cluster and apply them in order.

    Parameters
    ----------
    project
        The open project (its path is what the block tasks read); the caller holds its lock.
    model, params
        The model as the pipeline names it and the resolved Cellpose parameters
        (``SegmentParams.model_dump()``).
    frames
        The frames to segment (curated ones already left out when they are kept).
    block_size
        Frames per block: the pipeline's ``save_every``, the checkpoint blocks of a
        sequential run.
    folder
        Where the blocks' masks wait to be applied (removed once applied).
    movie
        The movie's name (task keys, events).
    save
        Saves the project (after each applied block).
    topic
        The topic of the workers' events.
    """
    from distributed import worker_client

    from h4tracks.core.segmentation.engine import SegmentationRun
    from h4tracks.core.stash import FrameStash

    blocks = [list(frames[i:i + block_size]) for i in range(0, len(frames), block_size)]
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("*.npy"):
        # left by a movie task that was killed; the caller holds the project's lock, so no
        # other task of this movie is running
        stale.unlink(missing_ok=True)
    tag = uuid.uuid4().hex[:8]
    files = [folder / f"{b[0]}-{b[-1]}-{tag}.npy" for b in blocks]
    with worker_client() as client:
        futures = [client.submit(segment_block, str(project.path), model, params, b, str(f),
                                 movie, topic, pure=False,
                                 key=f"h4tracks-{movie}-frames-{b[0]}-{b[-1]}-{tag}")
                   for b, f in zip(blocks, files, strict=True)]
        try:
            # in frame order, whatever order the blocks finish in: the provenance lists the
            # blocks as a sequential run does, and a kill leaves a prefix of them applied
            for future, f in zip(futures, files, strict=True):
                report, provenance = future.result()
                masks = np.load(f, mmap_mode="r")
                stash = FrameStash.of(zip(report.frames, masks, strict=True), masks.shape[1:])
                del masks
                SegmentationRun(stash, report, provenance).step().apply(project)
                save()
                f.unlink()
        except BaseException:
            client.cancel(futures)
            raise
        finally:
            for f in files:
                f.unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                folder.rmdir()  # empty now
