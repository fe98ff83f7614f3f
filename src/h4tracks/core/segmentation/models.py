"""Registry of Cellpose models: built-ins plus user-added weights files.

The registry lists cellpose's built-in model names and the custom/trained weights files the
user registered; the latter are persisted as JSON in the user config directory
(``$H4TRACKS_CONFIG_DIR`` or ``platformdirs.user_config_dir("h4tracks")``).

``load_cellpose_model`` builds a ``cellpose.models.CellposeModel`` for an entry without ever
letting cellpose download weights: cellpose silently falls back to downloading ``cyto3`` when
a ``pretrained_model`` path does not exist, and downloads built-in weights on first use; both
cases are checked up front and reported as :class:`~h4tracks.errors.H4TracksError`.

Return convention of ``load_cellpose_model``: a tuple ``(model, message)`` where ``message``
is ``None`` or one sentence the caller should show (e.g. the GPU was requested but is not
available, so the CPU is used). The message is also logged at WARNING level.

cellpose and torch are imported lazily so that importing this module stays cheap.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from h4tracks.core.lock import path_lock
from h4tracks.core.segmentation import cellpose_compat as compat
from h4tracks.errors import H4TracksError, InputError

if TYPE_CHECKING:  # pragma: no cover
    from cellpose.models import CellposeModel

logger = logging.getLogger(__name__)

CONFIG_ENV = "H4TRACKS_CONFIG_DIR"
REGISTRY_FILENAME = "models.json"
_FORMAT_VERSION = 1

#: the small model h4tracks ships (trained by scripts/train_demo_model.py on synthetic movies)
DEMO_MODEL = "h4tracks-demo"
_DEMO_FILE = "h4tracks_demo.pth"

# cellpose.models.model_path names these built-ins "<name>torch_<index>" in the cache.
_TORCH_SUFFIX_MODELS = ("cyto", "cyto2", "nuclei")


class ModelEntry(BaseModel):
    """One Cellpose model the user can segment with."""

    model_config = ConfigDict(extra="forbid")

    name: str
    kind: Literal["bundled", "builtin", "custom", "trained"]
    path: str | None = None  # weights file; None for built-ins
    diameter: float | None = None
    flow_threshold: float = 0.4
    cellprob_threshold: float = 0.0
    min_size: int = 15
    channels: tuple[int, int] = (0, 0)
    description: str = ""
    provenance: dict = Field(default_factory=dict)


def config_dir() -> Path:
    """The h4tracks user configuration directory (not created here)."""
    env = os.environ.get(CONFIG_ENV)
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_config_dir("h4tracks"))


@functools.lru_cache(maxsize=1)
def _cellpose_model_names() -> tuple[str, ...]:
    """``cellpose.models.MODEL_NAMES`` read from its source, without importing cellpose.

    Importing cellpose imports torch (seconds): listing the models when the napari panel
    opens must not pay for that. The literal list is parsed with :mod:`ast`; if cellpose
    ever computes it, cellpose is imported after all.
    """
    import ast
    import importlib.util
    import sys

    module = sys.modules.get("cellpose.models")
    if module is not None:
        return tuple(module.MODEL_NAMES)
    spec = importlib.util.find_spec("cellpose")  # finds the package, runs nothing
    if spec is not None and spec.submodule_search_locations:
        source = Path(next(iter(spec.submodule_search_locations))) / "models.py"
        with contextlib.suppress(OSError, SyntaxError, ValueError):
            for node in ast.parse(source.read_text(encoding="utf-8")).body:
                if isinstance(node, ast.Assign) and any(
                        isinstance(t, ast.Name) and t.id == "MODEL_NAMES" for t in node.targets):
                    return tuple(ast.literal_eval(node.value))
    from cellpose.models import MODEL_NAMES

    return tuple(MODEL_NAMES)


def builtin_model_names() -> list[str]:
    """The installed cellpose's built-in model names h4tracks offers, in cellpose's order.

    These are Cellpose 3's (cyto3, nuclei, ...) or, when Cellpose 4 is installed, Cellpose
    4's (cpsam, ...): each generation runs its own models only.
    """
    return compat.offered_builtins(_cellpose_model_names())


def builtin_cache_file(name: str) -> Path:
    """Where cellpose keeps (or would download) the weights of built-in model ``name``.

    Mirrors ``cellpose.models.model_path`` but never downloads; reads ``MODEL_DIR`` at call
    time (cellpose derives it from ``CELLPOSE_LOCAL_MODELS_PATH`` when it is imported).
    """
    import cellpose.models as cpm

    basename = f"{name}torch_0" if name in _TORCH_SUFFIX_MODELS else name
    return Path(cpm.MODEL_DIR) / basename


def _check_weights_file(path: Path) -> dict:
    """Load ``path`` as a state dict of a network the installed Cellpose runs, or raise a
    readable error (a model of the other Cellpose generation says which one it needs);
    return the dict."""
    if not path.exists():
        raise InputError(f"Model file {path} does not exist.")
    if not path.is_file():
        raise InputError(f"Model path {path} is not a file.")
    import torch

    try:
        try:
            # memory-mapped: a Cellpose 4 file is over 1 GB and only a few keys are read
            state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except (RuntimeError, TypeError):
            # RuntimeError: files in torch's legacy (non-zip) format cannot be mapped;
            # TypeError: torch < 2.1 has no ``mmap`` argument (cellpose 3 allows such torch,
            # and we do not pin torch ourselves). Read the whole file instead: a broken file
            # fails again here and is reported below.
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for non-torch files
        raise InputError(
            f"{path} is not a Cellpose model file (it cannot be read as PyTorch weights: "
            f"{type(exc).__name__})."
        ) from exc
    if not isinstance(state, Mapping) or not all(isinstance(k, str) for k in state):
        raise InputError(f"{path} is not a Cellpose model file (it holds no state dict).")
    if not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise InputError(f"{path} is not a Cellpose model file (it holds non-tensor values).")
    compat.check_state(path, state)
    return dict(state)


def demo_model_file() -> Path:
    """Path of the shipped demo model's weights (inside the installed package)."""
    from importlib.resources import files

    return Path(str(files("h4tracks") / "models" / _DEMO_FILE))


def demo_entry() -> ModelEntry:
    """Registry entry of the shipped demo model (the offline default)."""
    return ModelEntry(
        name=DEMO_MODEL, kind="bundled", path=str(demo_model_file()), diameter=None,
        description="Small demo model shipped with h4tracks, trained on its synthetic "
        "fluorescence movies; use a Cellpose built-in or train on your data for real work.",
    )


class ModelRegistry:
    """Built-in Cellpose models plus custom/trained models persisted in a JSON file."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = Path(path) if path is not None else config_dir() / REGISTRY_FILENAME

    # -- persistence -----------------------------------------------------------------------
    def _load(self) -> list[ModelEntry]:
        if not self.path.exists():
            return []
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise H4TracksError(
                f"The model registry file {self.path} is unreadable or corrupt ({exc}); "
                "fix or delete it to continue."
            ) from exc
        try:
            if not isinstance(data, dict) or not isinstance(data.get("models"), list):
                raise ValueError("expected an object with a 'models' list")
            entries = [ModelEntry.model_validate(item) for item in data["models"]]
        except (ValueError, ValidationError) as exc:
            first = str(exc).splitlines()[0]
            raise H4TracksError(
                f"The model registry file {self.path} has invalid content ({first}); "
                "fix or delete it to continue."
            ) from exc
        return [e for e in entries if e.kind not in ("builtin", "bundled")]

    def _save(self, entries: list[ModelEntry]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "version": _FORMAT_VERSION,
            "models": [e.model_dump(mode="json") for e in entries],
        }
        fd, tmp = tempfile.mkstemp(
            prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent
        )
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(payload, fh, indent=2)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    # -- queries ---------------------------------------------------------------------------
    def builtin_entries(self) -> list[ModelEntry]:
        """The shipped demo model followed by cellpose's built-in models."""
        return [demo_entry()] + [
            ModelEntry(
                name=n,
                kind="builtin",
                path=None,
                diameter=17.0 if n == "nuclei" else None,
                description=compat.builtin_description(),
            )
            for n in builtin_model_names()
        ]

    def default_entry(self) -> ModelEntry:
        """The model used when none is chosen: the shipped demo model (works offline).

        With Cellpose 4 installed, which cannot run the demo model, it is ``cpsam`` (whose
        weights the user downloads once, see docs/engines.md).
        """
        if compat.is_cellpose4():
            for entry in self.builtin_entries():
                if entry.name == compat.CP4_DEFAULT:
                    return entry
        return demo_entry()

    def custom_entries(self) -> list[ModelEntry]:
        """The persisted custom/trained models only (does not import cellpose)."""
        return self._load()

    def entries(self) -> list[ModelEntry]:
        """Built-in models followed by persisted custom/trained models."""
        return self.builtin_entries() + self._load()

    def names(self) -> list[str]:
        return [e.name for e in self.entries()]

    def get(self, name: str) -> ModelEntry:
        entries = self.entries()
        for e in entries:
            if e.name == name:
                return e
        raise H4TracksError(
            f"Unknown model {name!r}; available models: {', '.join(e.name for e in entries)}."
        )

    # -- edits -----------------------------------------------------------------------------
    @contextlib.contextmanager
    def _editing(self) -> Iterator[None]:
        """Hold the registry's lock for one read-modify-write: two programs adding models at
        once (two ``h4tracks models --add``, a training in napari) both keep their entry."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise H4TracksError(
                f"Cannot create the folder of the model registry {self.path.parent} "
                f"({exc.strerror or exc})."
            ) from exc
        with path_lock(self.path, command="h4tracks model registry"):
            yield

    def add_custom(
        self,
        name: str,
        path: str | os.PathLike[str],
        *,
        kind: Literal["custom", "trained"] = "custom",
        replace: bool = False,
        **params: Any,
    ) -> ModelEntry:
        """Register the Cellpose weights file ``path`` under ``name`` and persist it.

        ``params`` are further :class:`ModelEntry` fields (diameter, flow_threshold, ...).
        ``replace=True`` overwrites an existing custom/trained entry of the same name;
        built-in names can never be reused.
        """
        if not isinstance(name, str) or not name.strip() or name != name.strip():
            raise InputError(
                f"Model name {name!r} is invalid; use a non-empty name without "
                "leading or trailing spaces."
            )
        if kind not in ("custom", "trained"):
            raise InputError(f"Model kind {kind!r} is invalid; use 'custom' or 'trained'.")
        file = Path(path).expanduser().resolve()
        if name in builtin_model_names() or name == DEMO_MODEL:
            raise InputError(
                f"Model name {name!r} is a built-in model name; choose another name."
            )
        _check_weights_file(file)
        try:
            entry = ModelEntry(name=name, kind=kind, path=str(file), **params)
        except ValidationError as exc:
            first = "; ".join(
                f"{'.'.join(map(str, err['loc']))}: {err['msg']}" for err in exc.errors()
            )
            raise InputError(f"Invalid model parameters for {name!r} ({first}).") from exc
        with self._editing():
            custom = self._load()  # raises on a corrupt file, so it is never overwritten
            if any(e.name == name for e in custom) and not replace:
                raise InputError(
                    f"A model named {name!r} already exists; replace it on purpose (CLI: "
                    "--replace) or choose another name."
                )
            custom = [e for e in custom if e.name != name] + [entry]
            self._save(custom)
        return entry

    def remove(self, name: str) -> None:
        """Forget custom/trained model ``name`` (its weights file is left alone)."""
        if name in builtin_model_names() or name == DEMO_MODEL:
            raise InputError(f"Model {name!r} is built in and cannot be removed.")
        with self._editing():
            custom = self._load()
            if not any(e.name == name for e in custom):
                self.get(name)  # raises the "unknown model" error listing available names
            self._save([e for e in custom if e.name != name])


def load_cellpose_model(
    entry: ModelEntry, *, gpu: bool = False
) -> tuple[CellposeModel, str | None]:
    """Build the ``CellposeModel`` for ``entry`` without any network access.

    Returns ``(model, message)``; ``message`` is ``None`` or a sentence to show the user
    (currently only: GPU requested but CUDA unavailable, falling back to the CPU).
    """
    import torch

    message = None
    if gpu and not torch.cuda.is_available():
        gpu = False
        message = "GPU requested but CUDA is not available; running Cellpose on the CPU."
        logger.warning(message)

    from cellpose.models import CellposeModel

    if entry.kind == "builtin":
        if entry.name not in builtin_model_names():
            raise H4TracksError(f"{entry.name!r} is not a Cellpose built-in model.")
        cached = builtin_cache_file(entry.name)
        if not cached.is_file():
            raise H4TracksError(compat.missing_builtin_message(entry.name, cached))
        if compat.is_cellpose4():
            # Cellpose 4 ignores model_type (it would load its default model); its built-ins
            # are plain weights files in the cache
            model = compat.new_model(CellposeModel, str(cached), gpu=gpu)
        else:
            model = CellposeModel(gpu=gpu, model_type=entry.name)
        expected = str(cached)
    else:
        if entry.path is None:
            raise H4TracksError(f"Model {entry.name!r} has no weights file recorded.")
        file = Path(entry.path)
        if entry.kind == "bundled" and not file.is_file():
            raise H4TracksError(
                f"The demo model file {file} is missing from this h4tracks installation; "
                "reinstall h4tracks or run scripts/train_demo_model.py."
            )
        if not file.is_file():
            raise H4TracksError(
                f"The model file {file} of model {entry.name!r} is gone; restore the file "
                "or re-add it with ModelRegistry.add_custom(name, path, replace=True)."
            )
        state = _check_weights_file(file)
        try:
            model = compat.new_model(CellposeModel, str(file), gpu=gpu)
        except (RuntimeError, AssertionError, KeyError, ValueError) as exc:
            raise H4TracksError(
                f"Cellpose could not load the model file {file} of model {entry.name!r} "
                f"({type(exc).__name__}); it may be for another Cellpose version or network."
            ) from exc
        expected = str(file)
        # cellpose must have loaded exactly these weights (no silent fallback to cyto3).
        if not compat.loaded_matches(model.net, state):
            raise H4TracksError(
                f"Cellpose did not load the weights of {file} for model {entry.name!r}."
            )

    if os.path.abspath(str(model.pretrained_model)) != os.path.abspath(expected):
        raise H4TracksError(
            f"Cellpose loaded {model.pretrained_model} instead of {expected} for model "
            f"{entry.name!r}."
        )
    return model, message
