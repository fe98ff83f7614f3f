"""Command-line options generated from the parameter models, so that a flag's name, type,
choices, help and default are written once — in the pydantic model the algorithm takes.

:func:`add_model_options` adds ``--field-name`` for every field of one or more models (a
field several models share, like ``max_distance`` of the trackers, becomes one flag whose help
names each model's default); :func:`model_values` collects the flags a user gave for one model.
Flags that were not given are absent, so the model's own default (or a default chosen at run
time, such as a Cellpose model's diameter) applies, unless the command has a default of its own
(``h4tracks synth --frames`` is 40, the model's ``n_frames`` 30). Bounds are checked by the model
itself: a bad value becomes one line naming the flag (:mod:`h4tracks.cli.errors`).

A field's ``json_schema_extra`` hints (see :mod:`h4tracks.core.parameters`) can name its flag
(``flag``: ``n_frames`` is ``--frames``) and take a ``(Y, X)`` size as one number (``square``:
``--size 256`` is ``(256, 256)``). The flags a parser got are recorded in its
``option_names`` default, so that an error names the flag the user typed (:func:`flag_for`).
"""

from __future__ import annotations

import argparse
import types
import typing
from collections.abc import Iterable, Sequence
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from h4tracks.cli.types import finite_float, whole_number
from h4tracks.errors import H4TracksError

__all__ = ["add_model_options", "flag_for", "model_values", "option_name"]


def option_name(field: str) -> str:
    """``max_distance`` -> ``--max-distance``."""
    return "--" + field.replace("_", "-")


def _hints(info: FieldInfo) -> dict[str, Any]:
    extra = info.json_schema_extra
    return extra if isinstance(extra, dict) else {}


def flag_for(args: argparse.Namespace, field: str) -> str:
    """The flag of ``field`` on the command that parsed ``args`` (``n_frames`` ->
    ``--frames``); ``--field-name`` when the command recorded none."""
    return getattr(args, "option_names", {}).get(field) or option_name(field)


def _plain(annotation: Any) -> tuple[Any, bool]:
    """The annotation without ``None`` (and whether ``None`` was allowed)."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return annotation, False


def _converter(annotation: Any) -> dict[str, Any] | None:
    """argparse settings for a field type; None for types a flag cannot express."""
    plain, _ = _plain(annotation)
    if plain is bool:
        return {"action": argparse.BooleanOptionalAction}
    if plain is int:
        return {"type": whole_number, "metavar": "N"}
    if plain is float:
        return {"type": finite_float, "metavar": "X"}
    if typing.get_origin(plain) is typing.Literal:
        return {"choices": list(typing.get_args(plain))}
    if plain is str:
        return {"type": str}
    return None  # dicts, lists, tuples: set through the Python API or the plugin


def _default_text(default: Any, *, square: bool = False) -> str:
    if default is None:
        return "auto"
    if isinstance(default, bool):
        return "on" if default else "off"
    if square and isinstance(default, tuple) and len(set(default)) == 1:
        return str(default[0])
    return f"{default:g}" if isinstance(default, float) else str(default)


def add_model_options(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    models: Sequence[type[BaseModel]] | dict[str, type[BaseModel]],
    *,
    skip: Iterable[str] = (),
    defaults_from: str | None = None,
    defaults: dict[str, Any] | None = None,
) -> list[str]:
    """Add a flag for every field of ``models``; returns the field names added.

    Parameters
    ----------
    parser
        The (sub)parser or argument group.
    models
        The models; as ``{label: model}`` the help says, per label, whose option it is and
        its default there (``"lap: 45, global: auto"``).
    skip
        Fields without a flag (set elsewhere on the command line, or not expressible).
    defaults_from
        A sentence appended to every help text instead of the defaults (e.g. "default: the
        chosen model's"), for models whose defaults are decided at run time.
    defaults
        The command's own defaults of some fields (always passed to the model; the help
        shows them instead of the model's).
    """
    labelled = models if isinstance(models, dict) else {m.__name__: m for m in models}
    skipped = set(skip)
    own = defaults or {}
    fields: dict[str, list[tuple[str, FieldInfo]]] = {}
    for label, model in labelled.items():
        for name, info in model.model_fields.items():
            if name not in skipped:
                fields.setdefault(name, []).append((label, info))
    added: list[str] = []
    flags: dict[str, str] = dict(parser.get_default("option_names") or {})
    for name, owners in fields.items():
        info = owners[0][1]
        hints = _hints(info)
        square = bool(hints.get("square"))
        settings = ({"type": whole_number, "metavar": "N"} if square
                    else _converter(info.annotation))
        if settings is None:
            continue
        text = (info.description or info.title or name.replace("_", " ")).rstrip(".")
        if square:
            text += ", here the side N of a square frame"

        def default(i: FieldInfo, name: str = name, square: bool = square) -> str:
            value = own[name] if name in own else i.get_default(call_default_factory=True)
            return _default_text(value, square=square)

        if defaults_from is not None:
            tail = defaults_from
        elif len(labelled) > 1 and len(owners) == 1:
            tail = f"{owners[0][0]} only; default {default(info)}"
        elif len(labelled) > 1:
            tail = "; ".join(f"{label}: default {default(i)}" for label, i in owners)
        else:
            tail = f"default {default(info)}"
        flag = option_name(hints.get("flag", name))
        parser.add_argument(flag, dest=name, default=own.get(name, argparse.SUPPRESS),
                            help=f"{text} ({tail})".replace("%", "%%"), **settings)
        flags[name] = flag
        added.append(name)
    parser.set_defaults(option_names=flags)
    return added


def model_values(args: argparse.Namespace, model: type[BaseModel], *,
                 options: Iterable[str] = (), label: str | None = None) -> dict[str, Any]:
    """The values given on the command line for ``model``'s fields.

    Parameters
    ----------
    args
        Parsed arguments.
    model
        The model the values are for.
    options
        All fields that have flags on this command (from :func:`add_model_options`): a flag
        given that ``model`` does not have is refused with one sentence.
    label
        How to name ``model`` in that sentence (e.g. ``"--method overlap"``).

    Raises
    ------
    H4TracksError
        A flag was given that ``model`` does not take.
    """
    fields = model.model_fields
    given = {k: v for k, v in vars(args).items() if k in set(options) | set(fields)}
    foreign = sorted(k for k in given if k not in fields)
    if foreign:
        flags = ", ".join(flag_for(args, k) for k in foreign)
        raise H4TracksError(f"{flags} {'is' if len(foreign) == 1 else 'are'} not an option of "
                            f"{label or model.__name__}")
    for name, value in given.items():
        if _hints(fields[name]).get("square") and isinstance(value, int):
            given[name] = (value, value)  # --size N: an N x N frame
    return given
