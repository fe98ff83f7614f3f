"""The argument parser, one sub-command per verb (exposed for the docs and tests)."""

from __future__ import annotations

import argparse

from h4tracks.cli.commands import (
    cmd_check,
    cmd_curate,
    cmd_demo,
    cmd_info,
    cmd_models,
    cmd_new,
    cmd_segment,
    cmd_synth,
    cmd_track,
    cmd_train,
)
from h4tracks.cli.model_args import add_model_options
from h4tracks.cli.reports import cmd_analyze, cmd_evaluate, cmd_export
from h4tracks.cli.run_command import add_run_parser
from h4tracks.cli.types import (
    Parser,
    channel,
    cores,
    non_negative_float,
    non_negative_int,
    positive_float,
    positive_int,
)
from h4tracks.core.parameters import TRACKING_MODELS, RecipeParams, SegmentParams
from h4tracks.datasets.parameters import SyntheticConfig

#: the fields of a synthetic movie that ``synth`` and ``demo`` take (--frames, --size,
#: --cells, --seed); the rest keep the model's defaults
_MOVIE_SKIP = set(SyntheticConfig.model_fields) - {"n_frames", "shape", "n_cells", "seed"}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for the docs and tests)."""
    from h4tracks import __version__

    p = Parser(
        prog="h4tracks",
        description="Segment, track, curate and measure migrating cells in 2D time-lapse movies.",
    )
    p.add_argument("--version", action="version", version=f"h4tracks {__version__}")
    p.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    p.add_argument("--wait", type=non_negative_float, metavar="SECONDS",
                   help="how long to wait for another program that is changing the same "
                   "project (default 10, or H4TRACKS_LOCK_WAIT)")
    # the same flags after the command name (`h4tracks info X --debug`)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show tracebacks on errors")
    common.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS,
                        help="no progress output")
    common.add_argument("--wait", type=non_negative_float, metavar="SECONDS",
                        default=argparse.SUPPRESS,
                        help="how long to wait for another program changing the project")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    new = sub.add_parser("new", parents=[common],
                         help="create a project from an image (and a label movie)")
    new.add_argument("image", nargs="?",
                     help="time-lapse image (TIFF, OME-TIFF, ...); optional with --ctc")
    new.add_argument("--labels", help="label movie with the image's (T, Y, X) shape")
    new.add_argument("--ctc", metavar="DIR",
                     help="a Cell Tracking Challenge tracking (result folder with "
                     "res_track.txt, or <seq>_GT / TRA with man_track.txt): its labels and "
                     "lineage; the image from IMAGE or the CTC raw frames beside it")
    new.add_argument("--tracks", metavar="FILE.geff",
                     help="a GEFF tracking graph with its segmentation (a related labels "
                     "object), e.g. from h4tracks export --format geff; needs IMAGE")
    new.add_argument("-o", "--output", required=True, help="project to create (NAME.zarr)")
    new.add_argument("--channel", type=channel, help="channel index or name (multi-channel)")
    new.add_argument("--time-axis", choices=["auto", "T", "Z"], default="auto",
                     help="axis holding time (auto: Z is time in a Z-only stack)")
    new.add_argument("--pixel-size", type=positive_float, help="µm per pixel (overrides file)")
    new.add_argument("--frame-interval", type=positive_float,
                     help="time between frames (overrides file)")
    new.add_argument("--time-unit", choices=["ms", "s", "min", "h"],
                     help="unit of --frame-interval (default s)")
    new.add_argument("--overwrite", action="store_true",
                     help="replace an existing h4tracks project at --output")
    new.set_defaults(func=cmd_new)

    info = sub.add_parser("info", parents=[common], help="describe a project")
    info.add_argument("project", help="NAME.zarr")
    info.set_defaults(func=cmd_info)

    chk = sub.add_parser("check", parents=[common],
                         help="read every stored chunk and cross-check labels, tracks and "
                         "metadata; --repair fixes what it can")
    chk.add_argument("project", help="NAME.zarr")
    chk.add_argument("--repair", action="store_true",
                     help="restore damaged frames from the source image and the automatic "
                     "snapshot, rebuild the tracks from the labels (a 'repair' step in the "
                     "provenance)")
    chk.set_defaults(func=cmd_check)

    syn = sub.add_parser("synth", parents=[common],
                         help="write a synthetic movie with ground truth")
    syn.add_argument("-o", "--output", required=True, help="output folder")
    # the command's own defaults for frames and cells (older than the model's)
    add_model_options(syn, [SyntheticConfig], skip=_MOVIE_SKIP,
                      defaults={"n_frames": 40, "n_cells": 15})
    syn.add_argument("--overwrite", action="store_true")
    syn.set_defaults(func=cmd_synth)

    seg = sub.add_parser("segment", parents=[common],
                         help="segment every frame with Cellpose (a plain image becomes a project)")
    seg.add_argument("project", help="NAME.zarr, or an image to import first")
    seg.add_argument("-o", "--output", help="project to create when PROJECT is an image")
    seg.add_argument("--model", help="model name (see `h4tracks models`) or weights file; "
                     "default: the shipped demo model")
    runtime = {"engine", "precision"}  # not the model's: their defaults are SegmentParams'
    add_model_options(seg, [SegmentParams], skip={"channels", "batch_size", *runtime},
                      defaults_from="default: the chosen model's")
    add_model_options(seg, [SegmentParams], skip=set(SegmentParams.model_fields) - runtime)
    seg.add_argument("--frames", help="A:B (B exclusive), N, or a list 0,7,14; default all")
    seg.add_argument("--cores", type=cores, default=cores("80%"),
                     help="N, 40%% or 80%% of this machine's cores (default 80%%)")
    seg.add_argument("--gpu", action="store_true", help="use CUDA if torch sees it")
    seg.add_argument("--save-every", type=positive_int, default=50,
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
    add_model_options(tr, [RecipeParams],
                      skip=set(RecipeParams.model_fields) - {"epochs", "minutes"})
    tr.add_argument("--cores", type=cores, default=cores("80%"))
    tr.add_argument("--gpu", action="store_true")
    tr.add_argument("--replace", action="store_true", help="overwrite a model of that name")
    tr.set_defaults(func=cmd_train)

    tk = sub.add_parser("track", parents=[common], help="link the segmented cells into tracks")
    tk.add_argument("project", help="NAME.zarr (segmented)")
    tk.add_argument("--method", choices=["lap", "overlap", "global"], default="lap",
                    help="lap: Jaqaman LAP; overlap: mask overlap; global: division-aware "
                    "global linking (scipy/HiGHS), with motion compensation")
    options = add_model_options(tk, TRACKING_MODELS, skip={"weights"})
    tk.set_defaults(tracking_options=tuple(options))
    tk.add_argument("--learn-from", metavar="A:B",
                    help="global: fit the costs to the links in these curated frames, then "
                    "re-track the rest keeping the curated links")
    tk.add_argument("--cores", type=cores, default=cores("80%"))
    tk.set_defaults(func=cmd_track)

    de = sub.add_parser("demo", parents=[common],
                        help="synthetic movie -> segment -> track -> project + CTC export")
    de.add_argument("--out", default="h4tracks_demo", help="output folder")
    de.add_argument("--gui", action="store_true", help="open the result in napari")
    add_model_options(de, [SyntheticConfig], skip=_MOVIE_SKIP,
                      defaults={"n_frames": 20, "n_cells": 15})
    de.add_argument("--cores", type=cores, default=cores("80%"))
    de.set_defaults(func=cmd_demo)

    ex = sub.add_parser("export", parents=[common], help="export tracks in a standard format")
    ex.add_argument("project", help="NAME.zarr")
    ex.add_argument("--format", choices=["ctc", "geff"], default="ctc",
                    help="ctc: Cell Tracking Challenge result (mask###.tif + res_track.txt); "
                    "geff: a zarr with the graph as GEFF (tracks/, seg_id = label value, "
                    "axes scaled by the calibration) and the label movie (labels/)")
    ex.add_argument("-o", "--output", required=True, help="output folder (NAME.zarr for geff)")
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
    mo.add_argument("--diameter", type=positive_float, help="default diameter of --add")
    mo.add_argument("--replace", action="store_true")
    mo.add_argument("--remove", metavar="NAME")
    mo.set_defaults(func=cmd_models)

    an = sub.add_parser("analyze", parents=[common],
                        help="per-track metrics to CSV (+ summary, detections, a figure)")
    an.add_argument("project", help="NAME.zarr (tracked)")
    an.add_argument("-o", "--output", required=True,
                    help="track CSV (a NAME_summary.csv is written next to it)")
    an.add_argument("--min-length", type=non_negative_int, help="filter: at least N detections")
    an.add_argument("--min-movement", type=non_negative_float,
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
    an.add_argument("--cores", type=cores, default=cores("80%"))
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

    add_run_parser(sub, common)  # h4tracks run PIPELINE (cli/run_command.py)
    return p


