"""Commands that create, segment, track and curate a project.

Each command imports the modules it needs when it runs: they pull in zarr, geff, scipy,
torch, Cellpose or napari (seconds to load), and ``h4tracks --help`` and light commands must
stay fast (tests/test_cli.py checks it)."""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from pathlib import Path

import numpy as np

from h4tracks.cli.common import check_output_folder, print_table, progress_printer, writing
from h4tracks.cli.model_args import model_values
from h4tracks.cli.stopping import stopping
from h4tracks.core.frames import parse_frames
from h4tracks.core.parameters import TRACKING_MODELS
from h4tracks.errors import H4TracksError


def cmd_new(args: argparse.Namespace) -> int:
    from h4tracks.core.io.importing import create_project

    t0 = time.perf_counter()
    options = {"channel": args.channel, "time_axis": args.time_axis,
               "pixel_size": args.pixel_size, "frame_interval": args.frame_interval,
               "time_unit": args.time_unit}
    # the same checks as create_project's, worded with the command's flags
    if sum(x is not None for x in (args.labels, args.ctc, args.tracks)) > 1:
        raise H4TracksError("give one of --labels, --ctc and --tracks (a tracking has its "
                            "labels)")
    if args.tracks is not None and args.image is None:
        raise H4TracksError("--tracks needs the image to import as well")
    if args.ctc is None and args.image is None:
        raise H4TracksError("give the image to import (or --ctc DIR)")
    # the Data tab's import buttons call the same function
    out, project = create_project(args.output, args.image, labels=args.labels, ctc=args.ctc,
                                  tracks=args.tracks, overwrite=args.overwrite,
                                  progress=progress_printer(args), **options)
    s = project.summary()
    print(
        f"created {out}: {s['shape (T, Y, X)'][0]} frames of "
        f"{s['shape (T, Y, X)'][1]}x{s['shape (T, Y, X)'][2]} {s['dtype']}, "
        f"{s['cells']} cells in the labels ({time.perf_counter() - t0:.1f} s)"
    )
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    from h4tracks.core.store import open_project

    project = open_project(args.project)
    print_table(project.summary())
    return 0


def cmd_synth(args: argparse.Namespace) -> int:
    import tifffile

    from h4tracks.core.io.ctc import write_ctc
    from h4tracks.core.outputs import atomic_file
    from h4tracks.datasets.synthetic import SyntheticConfig, make_movie

    cfg = SyntheticConfig(**model_values(args, SyntheticConfig))  # bad values: nothing written
    out = Path(args.output)
    check_output_folder(out, overwrite=args.overwrite)
    t0 = time.perf_counter()
    movie = make_movie(cfg)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_file(out / "image.tif", "wb") as fh:
        tifffile.imwrite(fh, movie.image, imagej=True, metadata={"axes": "TYX"},
                         compression="zlib")
    # minisblack + axes: tifffile would otherwise take a 3- or 4-frame stack for RGB
    with atomic_file(out / "labels.tif", "wb") as fh:
        tifffile.imwrite(fh, movie.labels, compression="zlib", photometric="minisblack",
                         metadata={"axes": "TYX"})
    write_ctc(out / "ctc", movie.labels, movie.lineage, kind="gt", image=movie.image)
    print(
        f"wrote {out}/image.tif, labels.tif and ctc/ (ground truth): {cfg.n_frames} frames, "
        f"{movie.n_tracks} tracks, {movie.n_divisions} divisions "
        f"({time.perf_counter() - t0:.1f} s)"
    )
    return 0


def _project_for(path: str, output: str | None, args: argparse.Namespace) -> Path:
    """Project ``path``, or a new project imported from the image ``path``."""
    from h4tracks.core.store import is_project, open_project, save_project

    if is_project(path):
        if output is not None:
            raise H4TracksError(f"{path} is already a project; -o is only for a plain image")
        return Path(path)
    from h4tracks.core.io.importing import import_project

    src = Path(path)
    if src.is_dir() and src.suffix == ".zarr":
        open_project(path)  # raises the precise "not an h4tracks project" message
    out = Path(output) if output else src.with_name(src.name.split(".")[0] + ".zarr")
    project = import_project(src)
    save_project(project, out, progress=progress_printer(args))
    print(f"created project {out} from {src}")
    return out


def cmd_segment(args: argparse.Namespace) -> int:
    from h4tracks.core.parameters import SegmentParams
    from h4tracks.core.segmentation.engine import resolve_model, segment_project
    from h4tracks.core.store import open_project, save_project

    path = _project_for(args.project, args.output, args)
    entry = resolve_model(args.model)
    params = SegmentParams.for_model(entry, **model_values(args, SegmentParams))
    show = progress_printer(args)
    with writing(path):
        project = open_project(path)
        try:
            with stopping.cooperative():
                report = segment_project(
                    project, entry, params=params, frames=args.frames, cores=args.cores,
                    gpu=args.gpu, cancel=stopping,
                    progress=None if show is None else (lambda d, n: show("segment", d, n)),
                    checkpoint=lambda: save_project(project),
                    checkpoint_every=args.save_every, overwrite_curated=args.overwrite_curated,
                )
            save_project(project)  # a run stopped early has no checkpoint after its last block
        except KeyboardInterrupt:
            # blocks finished before the interrupt are applied with their provenance: save
            # them (the block in progress is dropped), then stop — the interrupt wins even
            # if that save fails
            with contextlib.suppress(Exception):
                if not project.is_saved():
                    save_project(project)
            raise
    stopping.raise_if_requested()  # after the finished frames were saved
    if report.message:
        print(report.message, file=sys.stderr)
    if report.skipped:
        print(f"kept {len(report.skipped)} curated frame(s) as they were "
              "(--overwrite-curated re-segments them)")
    print(
        f"segmented {len(report.frames)} frame(s) of {project.path} with {report.model}: "
        f"{report.n_cells} cells, {report.seconds:.1f} s "
        f"({report.frames_per_second:.2f} frames/s, {args.cores} core(s))"
    )
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from h4tracks.core.parameters import RecipeParams
    from h4tracks.core.segmentation.models import ModelRegistry
    from h4tracks.core.segmentation.train_project import train_from_project
    from h4tracks.core.segmentation.training import TrainingCancelled
    from h4tracks.core.store import open_project

    project = open_project(args.project)
    if "epochs" in vars(args) and "minutes" in vars(args):
        raise H4TracksError("give --epochs or --minutes, not both")
    params = RecipeParams(**model_values(args, RecipeParams))
    # like the Segmentation tab: fine-tune the default model unless told otherwise (from
    # scratch only, a few curated frames teach a network much less in the same time)
    base = None if args.scratch else (args.base or ModelRegistry().default_entry().name)
    show = progress_printer(args)
    try:
        with stopping.cooperative():
            entry, result = train_from_project(
                project, args.frames, args.name, base=base, params=params, cores=args.cores,
                gpu=args.gpu, replace=args.replace, cancel=stopping,
                progress=None if show is None else (
                    lambda d, n, loss: show("train", d, n, f"loss {loss:.3f}"
                                            if isinstance(loss, float) else None)),
            )
    except TrainingCancelled:  # stopped by a signal: nothing was registered or left behind
        stopping.raise_if_requested()
        raise
    print(f"trained model {entry.name!r}: {result.summary()}; weights: {entry.path}")
    return 0


def _tracking_params(args: argparse.Namespace):
    """The chosen method's parameter model, from the flags given (generated from it)."""
    model = TRACKING_MODELS[args.method]
    return model(**model_values(args, model, options=args.tracking_options,
                                label=f"--method {args.method}"))


def cmd_track(args: argparse.Namespace) -> int:
    from h4tracks.core.session import Session
    from h4tracks.core.store import open_project, save_project

    params = _tracking_params(args)  # a bad value is one line naming its flag (cli.errors)
    show = progress_printer(args)
    with writing(args.project):
        project = open_project(args.project)
        session = Session(project)
        t0 = time.perf_counter()
        if args.learn_from is not None:
            if args.method != "global":
                raise H4TracksError("--learn-from needs --method global")
            frames = parse_frames(args.learn_from, project.n_frames)
            session.retrack(frames, params)
            graph = project.graph
        else:
            try:
                with stopping.cooperative():
                    graph = session.track(
                        args.method, params, cores=args.cores, cancel=stopping,
                        progress=None if show is None else (lambda d, n: show("track", d, n)))
            except H4TracksError:
                stopping.raise_if_requested()  # cancelled by a signal: the project is as it was
                raise
        dt = time.perf_counter() - t0
        save_project(project)
    print(f"tracked {project.path} ({args.method}): {len(graph)} cells in "
          f"{graph.track_ids().size} tracks, {graph.n_edges} links, {graph.n_divisions} "
          f"divisions ({dt:.1f} s)")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from h4tracks.core.evaluation import evaluate
    from h4tracks.core.io.ctc import export_ctc, write_ctc
    from h4tracks.core.project import Project
    from h4tracks.core.segmentation.engine import segment_project
    from h4tracks.core.store import save_project
    from h4tracks.core.tracking import LapParams, track_project
    from h4tracks.datasets.synthetic import SyntheticConfig, make_movie

    cfg = SyntheticConfig(**model_values(args, SyntheticConfig))  # bad values: nothing written
    out = Path(args.out)
    check_output_folder(out, overwrite=None)  # the demo's own files are replaced
    out.mkdir(parents=True, exist_ok=True)
    show = progress_printer(args)

    def stage(name: str):
        return None if show is None else (lambda d, n: show(name, d, n))

    times: dict[str, float] = {}
    t0 = time.perf_counter()
    movie = make_movie(cfg)
    gt = write_ctc(out / "ground_truth", movie.labels, movie.lineage, kind="gt",
                   image=movie.image)
    times["synthetic movie"] = time.perf_counter() - t0
    project = Project(movie.image, metadata={"name": "h4tracks demo", "source": "synthetic"})
    t0 = time.perf_counter()
    report = segment_project(project, cores=args.cores, progress=stage("segment"))
    times["segmentation"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    params = LapParams(max_distance=4 * cfg.speed + cfg.radius, max_gap=2, divisions=True)
    graph = track_project(project, "lap", params, cores=args.cores, progress=stage("track"))
    times["tracking"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    path = save_project(project, out / "demo.zarr", overwrite=True)
    ctc = export_ctc(project, out / "ctc")
    times["save + CTC export"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    quality = evaluate(project, gt)  # the ground truth the movie was made with
    times["evaluation"] = time.perf_counter() - t0
    if show is not None:
        show.close()
    print(f"h4tracks demo: {cfg.n_frames} synthetic frames of {cfg.shape[0]}x{cfg.shape[1]} "
          f"({movie.n_tracks} true tracks, {movie.n_divisions} true divisions)")
    print(f"  segmented with {report.model}: {report.n_cells} cells "
          f"(truth: {int(sum(np.unique(f).size - 1 for f in movie.labels))})")
    print(f"  tracked (LAP, gaps <= {params.max_gap}, divisions): {graph.track_ids().size} "
          f"tracks, {graph.n_edges} links, {graph.n_divisions} divisions")
    seg, tra = quality.segmentation, quality.tracking
    print("  quality against the ground truth (1 = perfect):")
    if seg is not None:
        print(f"    segmentation  SEG {seg.seg:.3f}  AP@0.5 {seg.average_precision:.3f}  "
              f"({seg.tp} of {seg.n_reference} true cells matched, {seg.fp} extra)")
    if tra is not None:
        f1 = "-" if tra.reference_divisions + tra.result_divisions == 0 else \
            f"{tra.division_f1:.2f}"
        print(f"    tracking      TRA {tra.tra:.3f}  division F1 {f1}  "
              f"({tra.divisions_found} of {tra.reference_divisions} divisions found)")
    for name, sec in times.items():
        print(f"  {name:<18} {sec:6.1f} s")
    print(f"  project: {path}\n  CTC result: {ctc}\n  CTC ground truth: {gt}")
    print(f"next: look and curate in napari (h4tracks demo --gui, or Load {path.name} in the "
          f"h4tracks panel); score again with h4tracks evaluate {path} --reference {gt}")
    if args.gui:
        _open_gui(path)
    return 0


def _open_gui(path: Path) -> None:
    try:
        import napari

        from h4tracks.ui.main_widget import H4TracksWidget
    except ImportError as e:
        raise H4TracksError(f"--gui needs napari with a Qt binding ({e}); "
                            'pip install "napari[pyqt6]"') from None
    viewer = napari.Viewer(title="h4tracks demo")
    widget = H4TracksWidget(viewer)
    viewer.window.add_dock_widget(widget, name="h4tracks", area="right")
    widget.load(path)
    napari.run()


def cmd_curate(args: argparse.Namespace) -> int:
    from h4tracks.core.actions import MarkCurated
    from h4tracks.core.session import Session
    from h4tracks.core.store import open_project, save_project

    if not (args.mark or args.unmark):  # only reports: no lock needed
        project = open_project(args.project)
    else:
        with writing(args.project):
            project = open_project(args.project)
            session = Session(project)
            if args.mark:
                session.do(MarkCurated(parse_frames(args.mark, project.n_frames), True))
            if args.unmark:
                session.do(MarkCurated(parse_frames(args.unmark, project.n_frames), False))
            save_project(project)
    frames = project.summary()["curated frames"]
    print(f"curated frames of {project.path}: {frames or 'none'}")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    """Exit 0 when the project is sound (or was repaired), 1 when problems remain."""
    from h4tracks.core.check import check_project, repair_project

    show = progress_printer(args)
    progress = None if show is None else show
    if not args.repair:
        report = check_project(args.project, progress=progress)
        for line in report.lines():
            print(line)
        return 0 if report.ok else 1
    with writing(args.project):
        report = check_project(args.project, progress=progress)
        for line in report.lines():
            print(line)
        if report.ok:
            return 0
        for line in repair_project(args.project, report, progress=progress):
            print(f"repaired: {line}")
        after = check_project(args.project)
    for line in after.lines()[len(after.checked):]:
        print(line)
    return 0 if after.ok else 1


def cmd_models(args: argparse.Namespace) -> int:
    from h4tracks.core.segmentation.models import ModelRegistry

    reg = ModelRegistry()
    if args.add:
        name, path = args.add
        reg.add_custom(name, path, diameter=args.diameter, replace=args.replace)
        print(f"added model {name!r} ({path})")
    elif args.remove:
        reg.remove(args.remove)
        print(f"removed model {args.remove!r} (its weights file is kept)")
    else:
        for e in reg.entries():
            where = e.path or "(downloaded by cellpose on first use)"
            print(f"{e.name:<20} {e.kind:<8} {where}")
    return 0


