"""The ``h4tracks`` command line.

Every command prints one readable line and exits with a non-zero code on bad input; the
traceback is shown only with ``--debug``.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from h4tracks.errors import H4TracksError


def _positive_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if v <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return v


def _channel(text: str) -> int | str:
    return int(text) if text.lstrip("-").isdigit() else text


def _print_table(rows: dict[str, object]) -> None:
    width = max(len(k) for k in rows)
    for k, v in rows.items():
        if isinstance(v, (list, tuple)) and not isinstance(v, tuple):
            v = ", ".join(map(str, v)) or "-"
        print(f"{k:<{width}}  {'-' if v is None else v}")


# ---------------------------------------------------------------------- commands
def cmd_new(args: argparse.Namespace) -> int:
    from h4tracks.core.io.importing import import_project
    from h4tracks.core.store import save_project

    t0 = time.perf_counter()
    project = import_project(
        args.image, args.labels, channel=args.channel, time_axis=args.time_axis,
        pixel_size=args.pixel_size, frame_interval=args.frame_interval,
        time_unit=args.time_unit,
    )
    out = save_project(project, args.output, overwrite=args.overwrite,
                       progress=_progress_printer(args))
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
    _print_table(project.summary())
    return 0


def cmd_synth(args: argparse.Namespace) -> int:
    import tifffile

    from h4tracks.core.io.ctc import write_ctc
    from h4tracks.core.synthetic import SyntheticConfig, make_movie

    out = Path(args.output)
    if out.exists() and any(out.iterdir()) and not args.overwrite:
        raise H4TracksError(f"{out} exists and is not empty (pass --overwrite)")
    cfg = SyntheticConfig(n_frames=args.frames, shape=(args.size, args.size),
                          n_cells=args.cells, seed=args.seed)
    t0 = time.perf_counter()
    movie = make_movie(cfg)
    out.mkdir(parents=True, exist_ok=True)
    tifffile.imwrite(out / "image.tif", movie.image, imagej=True,
                     metadata={"axes": "TYX"}, compression="zlib")
    # minisblack + axes: tifffile would otherwise take a 3- or 4-frame stack for RGB
    tifffile.imwrite(out / "labels.tif", movie.labels, compression="zlib",
                     photometric="minisblack", metadata={"axes": "TYX"})
    write_ctc(out / "ctc", movie.labels, movie.lineage, kind="gt", image=movie.image)
    print(
        f"wrote {out}/image.tif, labels.tif and ctc/ (ground truth): {cfg.n_frames} frames, "
        f"{movie.n_tracks} tracks, {movie.n_divisions} divisions "
        f"({time.perf_counter() - t0:.1f} s)"
    )
    return 0


def _cores(text: str) -> int:
    from h4tracks.core.compute import core_budget

    try:
        return core_budget(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _open_or_create(path: str, output: str | None, args: argparse.Namespace):
    """Open project ``path``, or import the image ``path`` into a new project first."""
    from h4tracks.core.store import is_project, open_project, save_project

    if is_project(path):
        if output is not None:
            raise H4TracksError(f"{path} is already a project; -o is only for a plain image")
        return open_project(path)
    from h4tracks.core.io.importing import import_project

    src = Path(path)
    if src.is_dir() and src.suffix == ".zarr":
        open_project(path)  # raises the precise "not an h4tracks project" message
    out = Path(output) if output else src.with_name(src.name.split(".")[0] + ".zarr")
    project = import_project(src)
    save_project(project, out, progress=_progress_printer(args))
    print(f"created project {out} from {src}")
    return open_project(out)


def cmd_segment(args: argparse.Namespace) -> int:
    from h4tracks.core.segmentation.engine import SegmentParams, resolve_model, segment_project
    from h4tracks.core.store import save_project

    project = _open_or_create(args.project, args.output, args)
    entry = resolve_model(args.model)
    params = SegmentParams.for_model(
        entry, diameter=args.diameter, flow_threshold=args.flow_threshold,
        cellprob_threshold=args.cellprob_threshold, min_size=args.min_size,
    )
    show = _progress_printer(args)
    interrupted = False

    def cancel() -> bool:
        return interrupted

    try:
        report = segment_project(
            project, entry, params=params, frames=args.frames, cores=args.cores, gpu=args.gpu,
            progress=None if show is None else (lambda d, n: show("segment", d, n)),
            checkpoint=lambda: save_project(project), checkpoint_every=args.save_every,
            overwrite_curated=args.overwrite_curated,
        )
    except KeyboardInterrupt:
        # frames finished before the interrupt are kept: save them, then stop
        save_project(project)
        raise
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
    from h4tracks.core.segmentation.models import ModelRegistry
    from h4tracks.core.segmentation.recipe import RecipeParams
    from h4tracks.core.segmentation.training import train_from_project
    from h4tracks.core.store import open_project

    project = open_project(args.project)
    if args.epochs is not None and args.minutes is not None:
        raise H4TracksError("give --epochs or --minutes, not both")
    params = RecipeParams(epochs=args.epochs, minutes=args.minutes)
    # like the Segmentation tab: fine-tune the default model unless told otherwise (from
    # scratch only, a few curated frames teach a network much less in the same time)
    base = None if args.scratch else (args.base or ModelRegistry().default_entry().name)
    show = _progress_printer(args)
    entry, result = train_from_project(
        project, args.frames, args.name, base=base, params=params, cores=args.cores,
        gpu=args.gpu, replace=args.replace,
        progress=None if show is None else (lambda d, n, loss: show("train", d, n)),
    )
    print(f"trained model {entry.name!r}: {result.summary()}; weights: {entry.path}")
    return 0


def _tracking_params(args: argparse.Namespace):
    from h4tracks.core.tracking import GlobalParams, LapParams, OverlapParams

    if args.method == "global":
        given = {"max_distance": args.max_distance, "max_gap": args.max_gap,
                 "motion": args.motion, "window": args.window}
        return GlobalParams(**{k: v for k, v in given.items() if v is not None})
    if args.method == "overlap":
        given = {"min_overlap": args.min_overlap,
                 "divisions": True if args.divisions else None}
        return OverlapParams(**{k: v for k, v in given.items() if v is not None})
    given = {"max_distance": args.max_distance, "max_gap": args.max_gap,
             "gap_distance": args.gap_distance, "divisions": True if args.divisions else None}
    return LapParams(**{k: v for k, v in given.items() if v is not None})


def cmd_track(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from h4tracks.core.session import Session
    from h4tracks.core.store import open_project, save_project

    project = open_project(args.project)
    session = Session(project)
    try:
        params = _tracking_params(args)
    except ValidationError as e:
        err = e.errors()[0]
        raise H4TracksError(f"invalid {err['loc'][0]}: {err['msg']}") from None
    show = _progress_printer(args)
    t0 = time.perf_counter()
    if args.learn_from is not None:
        from h4tracks.core.segmentation.engine import parse_frames

        if args.method != "global":
            raise H4TracksError("--learn-from needs --method global")
        frames = parse_frames(args.learn_from, project.n_frames)
        session.retrack(frames, params)
        graph = project.graph
    else:
        graph = session.track(
            args.method, params, cores=args.cores,
            progress=None if show is None else (lambda d, n: show("track", d, n)))
    dt = time.perf_counter() - t0
    save_project(project)
    print(f"tracked {project.path} ({args.method}): {len(graph)} cells in "
          f"{graph.track_ids().size} tracks, {graph.n_edges} links, {graph.n_divisions} "
          f"divisions ({dt:.1f} s)")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from h4tracks.core.io.ctc import export_ctc, write_ctc
    from h4tracks.core.project import Project
    from h4tracks.core.segmentation.engine import segment_project
    from h4tracks.core.store import save_project
    from h4tracks.core.synthetic import SyntheticConfig, make_movie
    from h4tracks.core.tracking import LapParams, track_project

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    show = _progress_printer(args)

    def stage(name: str):
        return None if show is None else (lambda d, n: show(name, d, n))

    times: dict[str, float] = {}
    t0 = time.perf_counter()
    cfg = SyntheticConfig(n_frames=args.frames, shape=(args.size, args.size),
                          n_cells=args.cells, seed=args.seed)
    movie = make_movie(cfg)
    write_ctc(out / "ground_truth", movie.labels, movie.lineage, kind="gt", image=movie.image)
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
    print(f"h4tracks demo: {cfg.n_frames} synthetic frames of {args.size}x{args.size} "
          f"({movie.n_tracks} true tracks, {movie.n_divisions} true divisions)")
    print(f"  segmented with {report.model}: {report.n_cells} cells "
          f"(truth: {int(sum(np.unique(f).size - 1 for f in movie.labels))})")
    print(f"  tracked (LAP, gaps <= {params.max_gap}, divisions): {graph.track_ids().size} "
          f"tracks, {graph.n_edges} links, {graph.n_divisions} divisions")
    for name, sec in times.items():
        print(f"  {name:<18} {sec:6.1f} s")
    print(f"  project: {path}\n  CTC result: {ctc}\n  CTC ground truth: "
          f"{out / 'ground_truth'}")
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


def cmd_export(args: argparse.Namespace) -> int:
    from h4tracks.core.io.ctc import export_ctc
    from h4tracks.core.store import open_project

    project = open_project(args.project)
    out = Path(args.output)
    if out.exists() and not out.is_dir():
        raise H4TracksError(f"{out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not args.overwrite:
        raise H4TracksError(f"{out} exists and is not empty (pass --overwrite)")
    show = _progress_printer(args)
    folder = export_ctc(project, out,
                        progress=None if show is None else (lambda d, n: show("export", d, n)))
    n_tracks = sum(1 for line in (folder / "res_track.txt").read_text().splitlines() if line)
    print(f"wrote a CTC result to {folder}: {project.n_frames} label frames, "
          f"{n_tracks} CTC tracks (res_track.txt)")
    return 0


def cmd_curate(args: argparse.Namespace) -> int:
    from h4tracks.core.actions import MarkCurated
    from h4tracks.core.segmentation.engine import parse_frames
    from h4tracks.core.session import Session
    from h4tracks.core.store import open_project, save_project

    project = open_project(args.project)
    session = Session(project)
    if args.mark or args.unmark:
        if args.mark:
            session.do(MarkCurated(parse_frames(args.mark, project.n_frames), True))
        if args.unmark:
            session.do(MarkCurated(parse_frames(args.unmark, project.n_frames), False))
        save_project(project)
    frames = project.summary()["curated frames"]
    print(f"curated frames of {project.path}: {frames or 'none'}")
    return 0


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


def cmd_analyze(args: argparse.Namespace) -> int:
    from h4tracks.core.analysis import (
        filter_tracks,
        project_track_metrics,
        write_detections_csv,
        write_track_report,
    )
    from h4tracks.core.store import open_project

    if args.plot and not args.figure:
        raise H4TracksError("--plot needs --figure FIG.png (or .svg)")
    if args.figure and not args.plot:
        raise H4TracksError("--figure needs --plot scatter|histogram|rose|msd")
    if args.plot == "scatter" and not (args.x and args.y):
        raise H4TracksError("--plot scatter needs --x COLUMN and --y COLUMN")
    if args.plot == "histogram" and not args.x:
        raise H4TracksError("--plot histogram needs --x COLUMN")
    project = open_project(args.project)
    if len(project.graph) == 0:
        raise H4TracksError(f"{args.project} has no cells to analyze: segment and track it "
                            "first")
    md = project.metadata
    table = project_track_metrics(project, with_shape=args.shape, cores=args.cores)
    tracks, summary = write_track_report(
        table, args.output, min_length=args.min_length, min_movement=args.min_movement,
        sep=args.sep, decimal=args.decimal,
    )
    mask = filter_tracks(table, args.min_length, args.min_movement)
    print(f"wrote {tracks} ({len(table)} tracks, {int(mask.sum())} pass the filters) and "
          f"{summary.name}")
    if args.detections:
        det = write_detections_csv(
            project.graph, args.detections, pixel_size=md.pixel_size,
            frame_interval=md.frame_interval, time_unit=md.time_unit, sep=args.sep,
            decimal=args.decimal,
        )
        print(f"wrote {det} ({len(project.graph)} detections)")
    if args.plot:
        from h4tracks.core.analysis import figures

        ids = table["track_id"][mask]
        if args.plot == "scatter":
            fig = figures.scatter(table, args.x, args.y, mask=mask)
        elif args.plot == "histogram":
            fig = figures.histogram(table, args.x, mask=mask)
        elif args.plot == "rose":
            fig = figures.rose_plot(project.graph, pixel_size=md.pixel_size, track_ids=ids)
        else:
            fig = figures.msd_plot(project.graph, pixel_size=md.pixel_size,
                                   frame_interval=md.frame_interval, time_unit=md.time_unit,
                                   track_ids=ids)
        print(f"wrote {figures.save_figure(fig, args.figure)} ({args.plot})")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from h4tracks.core.evaluation import curated_vs_auto, evaluate
    from h4tracks.core.segmentation.engine import parse_frames
    from h4tracks.core.store import open_project

    project = open_project(args.project)
    frames = parse_frames(args.frames, project.n_frames) if args.frames else None
    if args.reference:
        if not Path(args.reference).exists():
            raise H4TracksError(f"reference {args.reference} does not exist")
        report = evaluate(project, args.reference, frames)
    else:
        report = curated_vs_auto(project, frames)
    print(f"{report.result_name} vs {report.reference_name}, frames "
          f"{report.frames[0]}-{report.frames[-1]}")
    s, t = report.segmentation, report.tracking
    if s is not None:
        print(f"segmentation: precision {s.precision:.4f}  recall {s.recall:.4f}  "
              f"F1 {s.f1:.4f}  AP@0.5 {s.average_precision:.4f}  SEG {s.seg:.4f}  "
              f"(TP {s.tp}, FP {s.fp}, FN {s.fn})")
    if t is not None:
        print(f"tracking:     TRA {t.tra:.4f}  DET {t.det:.4f}  AOGM {t.aogm:g}  "
              f"(FN {t.false_negatives}, FP {t.false_positives}, splits {t.splits}, "
              f"edges -{t.edge_deletions} +{t.edge_additions} ~{t.semantic_changes})")
    for note in report.notes:
        print(f"note: {note}")
    if args.json:
        report.to_json(args.json)
        print(f"wrote {args.json}")
    for path, text in ((args.markdown, report.to_markdown), (args.html, report.to_html)):
        if path:
            try:
                Path(path).write_text(text() + "\n", encoding="utf-8")
            except OSError as e:
                raise H4TracksError(f"cannot write {path}: {e.strerror or e}") from e
            print(f"wrote {path}")
    return 0


def _progress_printer(args: argparse.Namespace):
    if not sys.stderr.isatty() or args.quiet:
        return None

    def show(stage: str, done: int, total: int) -> None:
        end = "\n" if done == total else "\r"
        print(f"  {stage}: {done}/{total}", end=end, file=sys.stderr, flush=True)

    return show


# ---------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for the docs and tests)."""
    from h4tracks import __version__

    p = argparse.ArgumentParser(
        prog="h4tracks",
        description="Segment, track, curate and measure migrating cells in 2D time-lapse movies.",
    )
    p.add_argument("--version", action="version", version=f"h4tracks {__version__}")
    p.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    # the same flags after the command name (`h4tracks info X --debug`)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show tracebacks on errors")
    common.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS,
                        help="no progress output")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    new = sub.add_parser("new", parents=[common],
                         help="create a project from an image (and a label movie)")
    new.add_argument("image", help="time-lapse image (TIFF, OME-TIFF, ...)")
    new.add_argument("--labels", help="label movie with the image's (T, Y, X) shape")
    new.add_argument("-o", "--output", required=True, help="project to create (NAME.zarr)")
    new.add_argument("--channel", type=_channel, help="channel index or name (multi-channel)")
    new.add_argument("--time-axis", choices=["auto", "T", "Z"], default="auto",
                     help="axis holding time (auto: Z is time in a Z-only stack)")
    new.add_argument("--pixel-size", type=_positive_float, help="µm per pixel (overrides file)")
    new.add_argument("--frame-interval", type=_positive_float,
                     help="time between frames (overrides file)")
    new.add_argument("--time-unit", choices=["ms", "s", "min", "h"],
                     help="unit of --frame-interval (default s)")
    new.add_argument("--overwrite", action="store_true",
                     help="replace an existing h4tracks project at --output")
    new.set_defaults(func=cmd_new)

    info = sub.add_parser("info", parents=[common], help="describe a project")
    info.add_argument("project", help="NAME.zarr")
    info.set_defaults(func=cmd_info)

    syn = sub.add_parser("synth", parents=[common],
                         help="write a synthetic movie with ground truth")
    syn.add_argument("-o", "--output", required=True, help="output folder")
    syn.add_argument("--frames", type=int, default=40)
    syn.add_argument("--size", type=int, default=256, help="frame width and height (px)")
    syn.add_argument("--cells", type=int, default=15, help="cells in the first frame")
    syn.add_argument("--seed", type=int, default=0)
    syn.add_argument("--overwrite", action="store_true")
    syn.set_defaults(func=cmd_synth)

    seg = sub.add_parser("segment", parents=[common],
                         help="segment every frame with Cellpose (a plain image becomes a project)")
    seg.add_argument("project", help="NAME.zarr, or an image to import first")
    seg.add_argument("-o", "--output", help="project to create when PROJECT is an image")
    seg.add_argument("--model", help="model name (see `h4tracks models`) or weights file; "
                     "default: the shipped demo model")
    seg.add_argument("--diameter", type=_positive_float, help="cell diameter in px")
    seg.add_argument("--flow-threshold", type=float)
    seg.add_argument("--cellprob-threshold", type=float)
    seg.add_argument("--min-size", type=int, help="smallest mask kept (px)")
    seg.add_argument("--frames", help="A:B (B exclusive), N, or a list 0,7,14; default all")
    seg.add_argument("--cores", type=_cores, default=_cores("80%"),
                     help="N, 40%% or 80%% of this machine's cores (default 80%%)")
    seg.add_argument("--gpu", action="store_true", help="use CUDA if torch sees it")
    seg.add_argument("--save-every", type=int, default=50,
                     help="save the project every N frames (bounds memory on long movies)")
    keep = seg.add_mutually_exclusive_group()
    keep.add_argument("--keep-curated", dest="overwrite_curated", action="store_false",
                      help="leave curated frames as they are (the default)")
    keep.add_argument("--overwrite-curated", dest="overwrite_curated", action="store_true",
                      help="re-segment curated frames too")
    seg.set_defaults(overwrite_curated=False)
    seg.set_defaults(func=cmd_segment)

    tr = sub.add_parser("train", parents=[common],
                        help="train a Cellpose model on curated frames of a project")
    tr.add_argument("project", help="NAME.zarr")
    tr.add_argument("--frames", help="frames to train on: 0,7,14 or A:B "
                    "(default: the project's curated frames)")
    tr.add_argument("--name", required=True, help="name of the new model")
    start = tr.add_mutually_exclusive_group()
    start.add_argument("--from", dest="base",
                       help="model to fine-tune (default: the default model, as `segment` and "
                       "the Segmentation tab use); the recipe also tries training from "
                       "scratch when the budget is 10+ minutes or 600+ epochs")
    start.add_argument("--scratch", action="store_true",
                       help="train a new network from scratch only (no base model)")
    tr.add_argument("--epochs", type=int,
                    help="total epochs (default: scaled to the number of curated frames "
                    "and the patch size)")
    tr.add_argument("--minutes", type=_positive_float, help="stop after this time")
    tr.add_argument("--cores", type=_cores, default=_cores("80%"))
    tr.add_argument("--gpu", action="store_true")
    tr.add_argument("--replace", action="store_true", help="overwrite a model of that name")
    tr.set_defaults(func=cmd_train)

    tk = sub.add_parser("track", parents=[common], help="link the segmented cells into tracks")
    tk.add_argument("project", help="NAME.zarr (segmented)")
    tk.add_argument("--method", choices=["lap", "overlap", "global"], default="lap",
                    help="lap: Jaqaman LAP; overlap: mask overlap; global: division-aware "
                    "global linking (scipy/HiGHS), with motion compensation")
    tk.add_argument("--max-distance", type=_positive_float,
                    help="LAP: largest frame-to-frame displacement (px, default 45)")
    tk.add_argument("--max-gap", type=int, help="LAP: frames a cell may be missed (default 0)")
    tk.add_argument("--gap-distance", type=_positive_float,
                    help="LAP: largest displacement across a gap (px)")
    tk.add_argument("--divisions", action="store_true", help="detect divisions")
    tk.add_argument("--min-overlap", type=float, help="overlap: smallest overlap to link")
    tk.add_argument("--motion", choices=["none", "drift", "local"],
                    help="global: motion compensation (default local)")
    tk.add_argument("--window", type=int, help="global: frames per solve window")
    tk.add_argument("--learn-from", metavar="A:B",
                    help="global: fit the costs to the links in these curated frames, then "
                    "re-track the rest keeping the curated links")
    tk.add_argument("--cores", type=_cores, default=_cores("80%"))
    tk.set_defaults(func=cmd_track)

    de = sub.add_parser("demo", parents=[common],
                        help="synthetic movie -> segment -> track -> project + CTC export")
    de.add_argument("--out", default="h4tracks_demo", help="output folder")
    de.add_argument("--gui", action="store_true", help="open the result in napari")
    de.add_argument("--frames", type=int, default=20)
    de.add_argument("--size", type=int, default=256)
    de.add_argument("--cells", type=int, default=15)
    de.add_argument("--seed", type=int, default=0)
    de.add_argument("--cores", type=_cores, default=_cores("80%"))
    de.set_defaults(func=cmd_demo)

    ex = sub.add_parser("export", parents=[common], help="export tracks in a standard format")
    ex.add_argument("project", help="NAME.zarr")
    ex.add_argument("--format", choices=["ctc"], default="ctc",
                    help="ctc: Cell Tracking Challenge result (mask###.tif + res_track.txt)")
    ex.add_argument("-o", "--output", required=True, help="output folder")
    ex.add_argument("--overwrite", action="store_true")
    ex.set_defaults(func=cmd_export)

    cu = sub.add_parser("curate", parents=[common],
                        help="list, mark or unmark the frames you curated")
    cu.add_argument("project", help="NAME.zarr")
    cu.add_argument("--mark", help="frames to mark as curated: 0,7,14 or A:B")
    cu.add_argument("--unmark", help="frames that are not curated any more")
    cu.set_defaults(func=cmd_curate)

    mo = sub.add_parser("models", parents=[common], help="list, add or remove Cellpose models")
    mo.add_argument("--add", nargs=2, metavar=("NAME", "PATH"), help="register a weights file")
    mo.add_argument("--diameter", type=_positive_float, help="default diameter of --add")
    mo.add_argument("--replace", action="store_true")
    mo.add_argument("--remove", metavar="NAME")
    mo.set_defaults(func=cmd_models)

    an = sub.add_parser("analyze", parents=[common],
                        help="per-track metrics to CSV (+ summary, detections, a figure)")
    an.add_argument("project", help="NAME.zarr (tracked)")
    an.add_argument("-o", "--output", required=True,
                    help="track CSV (a NAME_summary.csv is written next to it)")
    an.add_argument("--min-length", type=int, help="filter: at least N detections")
    an.add_argument("--min-movement", type=float,
                    help="filter: path length at least D (µm if calibrated, else px)")
    an.add_argument("--sep", default=",", help="CSV separator (default ,)")
    an.add_argument("--decimal", default=".", choices=[".", ","], help="decimal mark")
    an.add_argument("--detections", metavar="DET.csv", help="also write one row per detection")
    an.add_argument("--shape", action="store_true",
                    help="add mask shape metrics (area, perimeter, solidity, ...)")
    an.add_argument("--plot", choices=["scatter", "histogram", "rose", "msd"],
                    help="figure of the tracks passing the filters")
    an.add_argument("--x", help="column for scatter x / histogram (e.g. mean_speed)")
    an.add_argument("--y", help="column for scatter y (e.g. directness)")
    an.add_argument("--figure", metavar="FIG.png", help="figure file (.png or .svg)")
    an.add_argument("--cores", type=_cores, default=_cores("80%"))
    an.set_defaults(func=cmd_analyze)

    ev = sub.add_parser("evaluate", parents=[common],
                        help="score segmentation and tracking against a reference")
    ev.add_argument("project", help="NAME.zarr")
    ev.add_argument("--reference", metavar="REF",
                    help="a project, a label movie (TIFF) or a CTC ground-truth folder; "
                    "default: the curated project against its automatic snapshot")
    ev.add_argument("--frames", help="A:B (B exclusive), consecutive; default all")
    ev.add_argument("--json", metavar="OUT.json", help="write the full report as JSON")
    ev.add_argument("--markdown", metavar="OUT.md", help="write a Markdown summary")
    ev.add_argument("--html", metavar="OUT.html", help="write an HTML summary")
    ev.set_defaults(func=cmd_evaluate)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``h4tracks`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except H4TracksError as e:
        if args.debug:
            raise
        print(f"h4tracks: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("h4tracks: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # unexpected: still one line unless --debug
        if args.debug:
            raise
        print(f"h4tracks: internal error: {type(e).__name__}: {e} (run with --debug for "
              "details)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
