"""Commands that write results outside the project: CTC export, track tables and figures,
evaluation reports.

Each command imports the modules it needs when it runs: they pull in zarr, geff, scipy,
torch, Cellpose or napari (seconds to load), and ``h4tracks --help`` and light commands must
stay fast (tests/test_cli.py checks it)."""

from __future__ import annotations

import argparse
from pathlib import Path

from h4tracks.cli.common import check_output_folder, check_outputs, progress_printer
from h4tracks.core.frames import parse_frames
from h4tracks.errors import H4TracksError


def cmd_export(args: argparse.Namespace) -> int:
    from h4tracks.core.io.ctc import export_ctc
    from h4tracks.core.io.geff_export import export_geff
    from h4tracks.core.store import open_project

    out = Path(args.output)
    check_output_folder(out, overwrite=args.overwrite)
    project = open_project(args.project)
    show = progress_printer(args)
    progress = None if show is None else (lambda d, n: show("export", d, n))
    if args.format == "geff":
        export_geff(project, out, overwrite=args.overwrite, progress=progress)
        g = project.graph
        print(f"wrote a GEFF to {out}: {len(g)} cells, {g.edge_array().shape[0]} links "
              f"(tracks/) and {project.n_frames} label frames (labels/)")
        return 0
    folder = export_ctc(project, out, progress=progress)
    n_tracks = sum(1 for line in (folder / "res_track.txt").read_text().splitlines() if line)
    print(f"wrote a CTC result to {folder}: {project.n_frames} label frames, "
          f"{n_tracks} CTC tracks (res_track.txt)")
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
    if args.figure and Path(args.figure).suffix.lower() not in (".png", ".svg"):
        raise H4TracksError(f"--figure must end in .png or .svg, not "
                            f"{Path(args.figure).suffix or 'without a suffix'!r}")
    # every output is checked before anything is computed or written
    out = Path(args.output)
    check_outputs({"-o": args.output,
                    "-o (summary)": str(out.with_name(f"{out.stem}_summary"
                                                      f"{out.suffix or '.csv'}")),
                    "--detections": args.detections, "--figure": args.figure})
    project = open_project(args.project)
    if len(project.graph) == 0:
        raise H4TracksError(f"{args.project} has no cells to analyze: segment and track it "
                            "first")
    md = project.metadata
    table = project_track_metrics(project, with_shape=args.shape, cores=args.cores)
    mask = filter_tracks(table, args.min_length, args.min_movement)
    for flag, column in (("--x", args.x), ("--y", args.y)):
        if column and args.plot in ("scatter", "histogram"):
            try:
                table.find(column)
            except KeyError as e:
                raise H4TracksError(f"{flag}: {e.args[0]}") from None
    fig = None
    if args.plot:  # built before writing: an unknown --x / --y column writes nothing
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
    tracks, summary = write_track_report(
        table, args.output, min_length=args.min_length, min_movement=args.min_movement,
        sep=args.sep, decimal=args.decimal,
    )
    print(f"wrote {tracks} ({len(table)} tracks, {int(mask.sum())} pass the filters) and "
          f"{summary.name}")
    if args.detections:
        det = write_detections_csv(
            project.graph, args.detections, pixel_size=md.pixel_size,
            frame_interval=md.frame_interval, time_unit=md.time_unit, sep=args.sep,
            decimal=args.decimal,
        )
        print(f"wrote {det} ({len(project.graph)} detections)")
    if fig is not None:
        from h4tracks.core.analysis import figures

        print(f"wrote {figures.save_figure(fig, args.figure)} ({args.plot})")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from h4tracks.core.evaluation import curated_vs_auto, evaluate
    from h4tracks.core.outputs import atomic_file
    from h4tracks.core.store import open_project

    check_outputs({"--json": args.json, "--markdown": args.markdown, "--html": args.html})
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
            with atomic_file(path, "w", encoding="utf-8") as fh:
                fh.write(text() + "\n")
            print(f"wrote {path}")
    return 0


