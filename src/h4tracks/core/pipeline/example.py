"""The commented example pipeline that ``h4tracks run --init`` writes."""

from __future__ import annotations

__all__ = ["EXAMPLE"]

EXAMPLE = """\
# h4tracks pipeline: run it with `h4tracks run pipeline.yaml` (docs/batch.md).
# Relative paths are relative to this file's folder.

inputs:
  # exactly one of:
  manifest: movies.csv        # CSV, one row per movie: image (required), labels, name,
                              # and any other columns (condition, replicate, position, ...)
                              # that are carried into the results
  # glob: "data/**/*.tif"
  # folder: data/             # every .tif/.tiff/.czi/.nd2/.lif in it

output: results               # projects/, movies/, tracks.csv, movies.csv, report.html

steps:                        # a step left out does not run; import always runs
  import:
    time_axis: auto           # auto | T | Z
    # channel: 1              # index or name of a multi-channel movie
    # pixel_size: 0.65        # µm per pixel, overrides the file's metadata
    # frame_interval: 5       # time between frames ...
    # time_unit: min          # ... in ms | s | min | h

  segment:                    # Cellpose, as `h4tracks segment` (skip it when the
    # model: cyto3            # manifest gives labels); default: the shipped demo model
    # diameter: 30            # any SegmentParams field (default: the model's)
    # frames: "0:100"
    overwrite_curated: false  # curated frames are kept, as `segment --keep-curated`
    save_every: 50            # frames between saves (a rerun resumes after the last one)

  track:                      # as `h4tracks track`
    method: lap               # lap | overlap | global
    max_distance: 20          # any parameter of the method (h4tracks track --help)
    max_gap: 2
    divisions: true

  analyze:                    # as `h4tracks analyze`: per-track metrics
    min_length: 5
    # min_movement: 10
    shape: false

  export:                     # as `h4tracks export`
    format: ctc               # ctc | geff

report:
  group_by: condition         # manifest column the figures compare (default: condition)
  metrics: [mean_speed, directness]

cluster:
  # scheduler: tcp://host:8786   # an existing dask cluster (or a scheduler file);
  #                              # 'sequential' runs in one process; empty: a local cluster
  # workers: 4                   # local cluster: worker processes (default: core budget)
  cores: 80%                     # local cluster core budget: 40% | 80% | N
"""
