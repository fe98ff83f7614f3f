"""The pipeline file: which movies, which steps with which parameters, where the results go.

A pipeline is a YAML (or TOML) file validated by :class:`Pipeline`, a frozen pydantic model.
The step parameters are the models the commands and the plugin use
(:class:`~h4tracks.core.parameters.SegmentParams`, the trackers' models in
:data:`~h4tracks.core.parameters.TRACKING_MODELS`), so a name, a bound or a default is
written once. A bad file is one :class:`PipelineError` sentence naming the file and the
entry (``pipeline.yaml: steps.track.max_distance must be > 0 (got -3)``).

Relative paths in the file are relative to the file's folder (a manifest's paths to the
manifest's folder), so a pipeline and its data can move together.
"""

from __future__ import annotations

import csv
import glob as _glob
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from h4tracks.core.parameters import (
    TRACKING_MODELS,
    GlobalParams,
    LapParams,
    OverlapParams,
    SegmentParams,
    validation_message,
)
from h4tracks.errors import InputError

__all__ = ["STEPS", "Movie", "Pipeline", "PipelineError", "load_pipeline", "parse_pipeline"]

#: the steps in the order they run
STEPS = ("import", "segment", "track", "analyze", "export")
#: image suffixes a ``folder`` input picks up (lower case)
IMAGE_SUFFIXES = (".tif", ".tiff", ".czi", ".nd2", ".lif")
#: manifest columns with a meaning; every other column is carried into the results
_RESERVED = ("image", "labels", "name")


class PipelineError(InputError):
    """A pipeline file that cannot run (one sentence naming the file and the entry)."""


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


# ----------------------------------------------------------------------------- steps
class ImportStep(_Frozen):
    """How each movie becomes a project (``h4tracks new``); labels come from the manifest."""

    channel: int | str | None = None
    time_axis: Literal["auto", "T", "Z"] = "auto"
    pixel_size: float | None = Field(None, gt=0, description="µm per pixel (overrides file)")
    frame_interval: float | None = Field(None, gt=0, description="time between frames")
    time_unit: Literal["ms", "s", "min", "h"] | None = None


class SegmentStep(_Frozen):
    """``h4tracks segment``: the model and the Cellpose parameters to override.

    The overrides are :class:`SegmentParams` fields written flat in the file
    (``diameter: 30``); the rest are the chosen model's defaults, as on the command line.
    """

    model: str | None = None
    frames: str | None = None
    overwrite_curated: bool = False
    save_every: int = Field(50, ge=1)
    params: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _flat_params(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        own = {k: v for k, v in data.items() if k in cls.model_fields and k != "params"}
        overrides = {k: v for k, v in data.items() if k not in cls.model_fields}
        overrides.update(data.get("params") or {})
        unknown = sorted(set(overrides) - set(SegmentParams.model_fields))
        if unknown:
            raise ValueError(f"{unknown[0]!r} is not a segmentation parameter (they are "
                             f"{', '.join(['model', 'frames', *SegmentParams.model_fields])})")
        try:  # checked now, so a bad value stops the run before any movie starts
            SegmentParams(**overrides)
        except ValidationError as e:
            raise ValueError(validation_message(e)) from None
        return {**own, "params": overrides}


class TrackStep(_Frozen):
    """``h4tracks track``: the method and its parameters, written flat in the file."""

    method: Literal["lap", "overlap", "global"] = "lap"
    params: LapParams | OverlapParams | GlobalParams

    @model_validator(mode="before")
    @classmethod
    def _flat_params(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        method = data.get("method", "lap")
        model = TRACKING_MODELS.get(method) if isinstance(method, str) else None
        if model is None:
            return data  # the Literal reports the bad method
        given = data.get("params")
        if isinstance(given, model):
            return data
        values = {k: v for k, v in data.items() if k not in ("method", "params")}
        values.update(given or {})
        unknown = sorted(set(values) - set(model.model_fields))
        if unknown:
            raise ValueError(f"{unknown[0]!r} is not a parameter of {method} tracking (they "
                             f"are {', '.join(model.model_fields)})")
        try:
            params = model(**values)
        except ValidationError as e:
            raise ValueError(validation_message(e)) from None
        return {"method": method, "params": params}

    @model_validator(mode="after")
    def _matching(self) -> TrackStep:
        if not isinstance(self.params, TRACKING_MODELS[self.method]):
            raise ValueError(f"{self.method} tracking needs "
                             f"{TRACKING_MODELS[self.method].__name__}")
        return self


class AnalyzeStep(_Frozen):
    """``h4tracks analyze``: per-track metrics, filters as on the command line."""

    min_length: int | None = Field(None, ge=0)
    min_movement: float | None = Field(None, ge=0)
    shape: bool = False


class ExportStep(_Frozen):
    """``h4tracks export``: CTC result folder or GEFF."""

    format: Literal["ctc", "geff"] = "ctc"


class Steps(_Frozen):
    """Which steps run; a step left out does not run (import always does)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    import_: ImportStep = Field(default_factory=ImportStep, alias="import")
    segment: SegmentStep | None = None
    track: TrackStep | None = None
    analyze: AnalyzeStep | None = None
    export: ExportStep | None = None

    @model_validator(mode="before")
    @classmethod
    def _known_steps(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        for name in data:
            if name not in STEPS and name != "import_":
                raise ValueError(f"unknown step {name!r} (the steps are {', '.join(STEPS)})")
        # an empty entry (``analyze:`` in YAML) means the step with its defaults
        return {k: ({} if v is None else v) for k, v in data.items()}


# ----------------------------------------------------------------------------- inputs
class Inputs(_Frozen):
    """The movies: one of a glob, a folder or a CSV manifest (one row per movie)."""

    glob: str | None = None
    folder: str | None = None
    manifest: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> Inputs:
        given = [k for k in ("glob", "folder", "manifest") if getattr(self, k)]
        if len(given) != 1:
            raise ValueError("give exactly one of glob, folder and manifest"
                             + (f" (got {', '.join(given)})" if given else ""))
        return self


class ReportSpec(_Frozen):
    """The cross-movie report: which manifest column groups the movies, which metrics."""

    group_by: str | None = Field(None, description="manifest column (default: condition if "
                                 "the manifest has one, else each movie on its own)")
    metrics: list[str] = Field(default_factory=lambda: ["mean_speed", "directness"],
                               min_length=1)


class ClusterSpec(_Frozen):
    """Where the movies run (the command line's ``--scheduler`` / ``--workers`` win)."""

    scheduler: str | None = Field(None, description="tcp://host:8786, a scheduler file, "
                                  "'sequential', or empty for a local cluster")
    workers: int | None = Field(None, ge=1, description="workers of the local cluster "
                                "(default: the core budget)")
    cores: str | int = Field("80%", description="core budget of the local cluster")


class Pipeline(_Frozen):
    """A whole pipeline file (see the module docstring and docs/batch.md)."""

    inputs: Inputs
    steps: Steps = Field(default_factory=Steps)
    output: str
    report: ReportSpec = Field(default_factory=ReportSpec)
    cluster: ClusterSpec = Field(default_factory=ClusterSpec)
    #: the folder relative paths are resolved against (the file's folder)
    base_dir: str = "."

    def path(self, value: str) -> Path:
        """``value`` resolved against :attr:`base_dir`."""
        p = Path(value).expanduser()
        return (p if p.is_absolute() else Path(self.base_dir) / p).resolve()

    @property
    def output_dir(self) -> Path:
        """The output folder, absolute."""
        return self.path(self.output)


# ----------------------------------------------------------------------------- loading
def _message(source: str, err: ValidationError) -> str:
    first = err.errors()[0]
    loc = ".".join(str(x) for x in first.get("loc", ()) if x != "import_")
    if first.get("type") == "missing":
        return f"{source}: {loc} is missing"
    if first.get("type") == "value_error":  # our validators' sentences
        text = re.sub(r"^Value error, ", "", str(first.get("msg", "")))
        if re.match(r"^\w+ (must|is) ", text):  # "max_distance must be > 0" names a field
            return f"{source}: {loc}.{text}" if loc else f"{source}: {text}"
        return f"{source}: {loc}: {text}" if loc else f"{source}: {text}"
    return f"{source}: {validation_message(err, lambda _last: loc)}"


def parse_pipeline(data: Any, *, base_dir: str | Path = ".", source: str = "pipeline") -> Pipeline:
    """Validate a pipeline given as a dict (from YAML/TOML or Python).

    Raises
    ------
    PipelineError
        One sentence naming ``source`` and the bad entry.
    """
    if not isinstance(data, dict):
        raise PipelineError(f"{source}: a pipeline is a mapping with inputs, steps and output, "
                            f"not {type(data).__name__}")
    unknown = sorted(set(data) - set(Pipeline.model_fields) - {"base_dir"})
    if unknown:
        raise PipelineError(f"{source}: unknown entry {unknown[0]!r} (the entries are inputs, "
                            "steps, output, report, cluster)")
    try:
        return Pipeline(**{"base_dir": str(Path(base_dir).resolve()), **data})
    except ValidationError as e:
        raise PipelineError(_message(source, e)) from None


def load_pipeline(path: str | Path) -> Pipeline:
    """Read and validate a pipeline file (``.yaml`` / ``.yml`` or ``.toml``).

    Raises
    ------
    PipelineError
        A missing or unreadable file, bad YAML/TOML, or an invalid entry: one sentence.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PipelineError(f"pipeline file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as e:
        raise PipelineError(f"cannot read pipeline file {path}: {e}") from None
    if path.suffix.lower() == ".toml":
        import tomllib

        try:
            data: Any = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            raise PipelineError(f"{path.name}: not valid TOML: {e}") from None
    else:
        import yaml  # pyyaml: light, imported on use

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as e:
            where = getattr(e, "problem_mark", None)
            at = f" at line {where.line + 1}" if where is not None else ""
            problem = getattr(e, "problem", None) or str(e).splitlines()[0]
            raise PipelineError(f"{path.name}: not valid YAML{at}: {problem}") from None
    return parse_pipeline(data, base_dir=path.parent, source=path.name)


# ----------------------------------------------------------------------------- movies
@dataclass(frozen=True)
class Movie:
    """One movie of a run: its name (unique; names its project), files and manifest columns."""

    name: str
    image: str
    labels: str | None = None
    columns: dict[str, str] = field(default_factory=dict)


def _stem(path: Path) -> str:
    name = path.name
    for suffix in (".ome.tiff", ".ome.tif"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def discover_movies(pipeline: Pipeline) -> list[Movie]:
    """The movies of a pipeline, checked before any work: every file exists, names are unique.

    Raises
    ------
    PipelineError
        No movie found, a missing file, a manifest without an ``image`` column, two movies
        with one name.
    """
    inputs = pipeline.inputs
    movies: list[Movie] = []
    if inputs.manifest:
        movies = _read_manifest(pipeline.path(inputs.manifest))
    elif inputs.glob:
        pattern = str(pipeline.path(inputs.glob))
        files = sorted(Path(p) for p in _glob.glob(pattern, recursive=True) if Path(p).is_file())
        if not files:
            raise PipelineError(f"inputs.glob {inputs.glob!r} matches no file")
        movies = [Movie(_stem(f), str(f)) for f in files]
    else:
        folder = pipeline.path(inputs.folder or ".")
        if not folder.is_dir():
            raise PipelineError(f"inputs.folder {folder} does not exist")
        files = sorted(f for f in folder.iterdir()
                       if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise PipelineError(f"inputs.folder {folder} holds no image "
                                f"({', '.join(IMAGE_SUFFIXES)})")
        movies = [Movie(_stem(f), str(f)) for f in files]
    seen: dict[str, str] = {}
    for m in movies:
        if m.name in seen:
            raise PipelineError(f"two movies are named {m.name!r} ({seen[m.name]} and "
                                f"{m.image}); give a name column in a manifest")
        seen[m.name] = m.image
    return movies


def _read_manifest(path: Path) -> list[Movie]:
    try:
        with open(path, encoding="utf-8-sig", newline="") as fh:
            rows = list(csv.DictReader(fh))
    except FileNotFoundError:
        raise PipelineError(f"manifest {path} does not exist") from None
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise PipelineError(f"cannot read manifest {path}: {e}") from None
    if not rows:
        raise PipelineError(f"manifest {path.name} has no movie rows")
    if "image" not in rows[0]:
        raise PipelineError(f"manifest {path.name} needs an 'image' column (got "
                            f"{', '.join(k for k in rows[0] if k) or 'none'})")
    movies = []
    for i, row in enumerate(rows, start=2):  # line 1 is the header
        def file(column: str, row: dict[str, Any] = row, i: int = i) -> str | None:
            value = (row.get(column) or "").strip()
            if not value:
                return None
            p = Path(value).expanduser()
            p = (p if p.is_absolute() else path.parent / p).resolve()
            if not p.exists():
                raise PipelineError(f"manifest {path.name} line {i}: {column} {value} does "
                                    "not exist")
            return str(p)

        image = file("image")
        if image is None:
            raise PipelineError(f"manifest {path.name} line {i}: the image is empty")
        name = (row.get("name") or "").strip() or _stem(Path(image))
        if "/" in name or "\\" in name or name.startswith("."):
            raise PipelineError(f"manifest {path.name} line {i}: {name!r} cannot name a "
                                "project")
        columns = {k: (v or "").strip() for k, v in row.items()
                   if k and k not in _RESERVED}
        movies.append(Movie(name, image, file("labels"), columns))
    return movies
