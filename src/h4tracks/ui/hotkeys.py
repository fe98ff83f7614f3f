"""Every keyboard shortcut of the h4tracks plugin, in one table.

Widgets never hard-code a key: they bind handlers by action name with :func:`bind_hotkeys`
and write tooltips with :func:`tooltip`, both of which read :data:`HOTKEYS`.

Keys are napari key strings (``"Control-Z"``, ``"E"``). They are bound twice:

* on the viewer, so they work whatever layer is selected, and
* on the project's Labels layer itself, because napari looks keys up in the active layer's
  own keymap, then in its class keymap (napari's Labels shortcuts), and only then in the
  viewer's keymap. Binding on the layer instance is the only way to win over napari's own
  Labels keys there.

Conflicts with napari 0.9's Labels keys, resolved on purpose (on the project's labels layer
only; other Labels layers keep napari's behaviour):

* ``E`` is napari's second key for the eraser (``1`` still selects it); in h4tracks ``E``
  selects the next free label ID so that painting creates a new cell.
* ``Control-Z`` / ``Control-Shift-Z`` are napari's per-layer paint undo/redo; in h4tracks they
  undo/redo the project's edit history (curation verbs), shared by all tabs.

* ``Escape`` is napari's "reset polygon" key; in h4tracks it first cancels a pending link or
  unlink (Tracking tab) and only otherwise resets the polygon, as napari would.

The other curation keys (D, J, C, I, U) and the Tracking tab's ``S``, ``K`` and ``N`` are
unused by napari's Labels layer.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Hotkey:
    """One key binding: the napari key string and what it does."""

    key: str
    description: str


#: action name -> key binding (the single source of truth for every key of the plugin)
HOTKEYS: dict[str, Hotkey] = {
    "undo": Hotkey("Control-Z", "Undo the last edit of the project"),
    "redo": Hotkey("Control-Shift-Z", "Redo the last undone edit"),
    "next_free_id": Hotkey(
        "E", "Select the next free label ID of this frame: painting then creates a new cell"
    ),
    "remove_cell": Hotkey("D", "Remove mode: click a cell to delete it"),
    "merge_cells": Hotkey("J", "Merge mode: click two cells; the second joins the first"),
    "separate_region": Hotkey(
        "C", "Separate mode: click a fragment of a cell to give it a new ID"
    ),
    "select_id": Hotkey("I", "Select-ID mode: click a cell to paint with its ID"),
    "relabel_frame": Hotkey(
        "U", "Give each disconnected fragment of the current frame its own ID"
    ),
    # Tracking tab
    "track_single_cell": Hotkey(
        "S", "Track the cell under the mouse forward by mask overlap (else: click a cell)"
    ),
    "link_cells": Hotkey(
        "K", "Link mode: click the cell in each frame, pressing again (Confirm) links them"
    ),
    "unlink_cells": Hotkey(
        "N", "Unlink mode: click the first and last cell of the piece to cut, then Confirm"
    ),
    "cancel_click": Hotkey("Escape", "Cancel a pending link/unlink (click mode)"),
}


def key_of(action: str) -> str:
    """The key bound to ``action`` (KeyError for an unknown action)."""
    return HOTKEYS[action].key


def tooltip(action: str, text: str | None = None) -> str:
    """A tooltip for the widget triggering ``action``, ending with its key.

    Parameters
    ----------
    action
        Name in :data:`HOTKEYS`.
    text
        Tooltip text; default the table's description.
    """
    hk = HOTKEYS[action]
    return f"{text or hk.description} [{hk.key}]"


def bind_hotkeys(provider: Any, handlers: Mapping[str, Callable[[], Any]]) -> list[str]:
    """Bind ``handlers`` (action name -> no-argument callable) on a napari keymap provider.

    Parameters
    ----------
    provider
        A ``napari.Viewer`` or a layer (anything with ``bind_key``).
    handlers
        Actions to bind; each must be in :data:`HOTKEYS`.

    Returns
    -------
    list of str
        The keys bound, in the order of ``handlers``.
    """
    keys = []
    for action, fn in handlers.items():
        key = key_of(action)

        # napari calls a bound key function with the provider as its only argument
        def on_key(_provider: Any, fn: Callable[[], Any] = fn) -> None:
            fn()

        on_key.__name__ = f"h4tracks_{action}"
        on_key.__doc__ = HOTKEYS[action].description
        provider.bind_key(key, on_key, overwrite=True)
        keys.append(key)
    return keys


def mode_buttons(
    modes: Mapping[str, str], on_click: Callable[[str], Any], grid: Any, columns: int
) -> dict[str, Any]:
    """Checkable click-mode buttons (action name -> text), laid out ``columns`` per row of
    the ``QGridLayout`` ``grid``; a click calls ``on_click(action)``. Tooltips end with the
    action's key. Returns action name -> button."""
    from qtpy.QtWidgets import QPushButton

    buttons: dict[str, Any] = {}
    for i, (mode, text) in enumerate(modes.items()):
        btn = QPushButton(text)
        btn.setCheckable(True)
        btn.setToolTip(tooltip(mode))
        btn.clicked.connect(lambda _checked=False, m=mode: on_click(m))
        buttons[mode] = btn
        grid.addWidget(btn, i // columns, i % columns)
    return buttons


def duplicate_keys() -> dict[str, list[str]]:
    """Keys used by more than one action (should be empty)."""
    by_key: dict[str, list[str]] = {}
    for action, hk in HOTKEYS.items():
        by_key.setdefault(hk.key.lower(), []).append(action)
    return {k: v for k, v in by_key.items() if len(v) > 1}
