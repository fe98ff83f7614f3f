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
