"""The project and its napari layers, kept together (a mixin of the main widget).

The project is the truth and layers are its views. This part of
:class:`h4tracks.ui.main_widget.H4TracksWidget` keeps the layer combos and the current
project in step: a project opened or created shows its layers; layers the user chooses (a
dropped TIFF, sample data, a labels layer they made) form a working in-memory project at once;
the labels layer follows undo/redo of runs that create or remove the labels; and every stroke
painted into the project's labels layer is recorded in the session's history (napari's
``Labels.events.paint``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from qtpy.QtWidgets import QFileDialog

from h4tracks.core import lock
from h4tracks.core.project import Project
from h4tracks.core.store import open_project
from h4tracks.errors import H4TracksError
from h4tracks.ui.layers import PROJECT_KEY, layer_project, project_from_layers, project_layer_data


class ProjectLayersMixin:
    """Combos ↔ project ↔ layers, and paint recording (see the module docstring)."""

    def _refresh_combos(self, event: Any = None) -> None:
        for combo in (self.image_combo, self.labels_combo, self.tracks_combo):
            combo.refresh()

    def _on_layer_inserted(self, event: Any) -> None:
        layer = event.value
        layer.events.name.connect(self._refresh_combos)
        self._refresh_combos()
        project = layer_project(layer)
        if project is None:
            return
        if project is self.project:
            self._select_project_layers(project)
        elif not self._quiet and not self.has_unsaved_work():
            # a project opened by napari's reader (File › Open, drag and drop of a .zarr)
            self._select_project_layers(project)
            self._offer_recovery(project)

    def _adopt_existing_layers(self) -> None:
        for layer in self.viewer.layers:
            project = layer_project(layer)
            if project is not None:
                self._select_project_layers(project)
                return
        self._refresh_combos()

    def _select_project_layers(self, project: Project) -> None:
        self.project = project
        self._quiet += 1
        try:
            for layer in self.viewer.layers:
                if layer_project(layer) is project:
                    for combo in (self.image_combo, self.labels_combo, self.tracks_combo):
                        if isinstance(layer, combo._type):
                            combo.set_layer(layer)
        finally:
            self._quiet -= 1
        self._watch_painting()
        self.project_changed.emit(project)

    def _on_layer_choice(self, _text: str = "") -> None:
        if self._quiet:
            return
        if self._layers_match_project():
            self.project_changed.emit(self.project)
            return
        # whatever layers are chosen form a working project at once (saved on first Save)
        if self.image_combo.layer() is None:
            self.project_changed.emit(None)
            return
        try:
            self.current_project()
        except H4TracksError as e:
            self.notify(str(e), error=True)
            self.project_changed.emit(None)

    def _layers_match_project(self) -> bool:
        """Whether the chosen layers are views of the current project."""
        p = self.project
        if p is None:
            return False
        image, labels = self.image_combo.layer(), self.labels_combo.layer()
        if image is None or layer_project(image) is not p:
            return False
        if (labels is None) != (p.labels is None):
            return False
        tracks = self.tracks_combo.layer()
        if tracks is not None and layer_project(tracks) is not p:
            return False  # tracks chosen that the project does not hold yet
        return labels is None or labels.data is p.labels

    def click_position(self, event: Any) -> tuple[float, float] | None:
        """The data pixel ``(y, x)`` of a left click on the canvas, in the project's labels
        layer; None for other events or without a project labels layer."""
        if event.type != "mouse_press" or event.button != 1:
            return None
        layer = self.project_labels_layer()
        if layer is None:
            return None
        data = layer.world_to_data(event.position)
        return float(data[-2]), float(data[-1])

    def project_labels_layer(self) -> Any | None:
        """The Labels layer showing the current project's labels (painting edits them)."""
        from napari.layers import Labels

        p = self.project
        if p is None or p.labels is None:
            return None
        chosen = self.labels_combo.layer()
        if chosen is not None and chosen.data is p.labels:
            return chosen
        for layer in self.viewer.layers:
            if isinstance(layer, Labels) and layer.data is p.labels:
                return layer
        return None

    def refresh_labels(self) -> None:
        """Redraw the project's labels layer after its data changed outside napari."""
        layer = self.project_labels_layer()
        if layer is not None:
            layer.refresh()

    def _ensure_labels_layer(self, project: Project) -> None:
        """Keep a Labels layer showing ``project.labels``: created by the first segmentation,
        removed when undo takes the labels away, re-pointed when redo brings them back."""
        from napari.layers import Labels

        ours = [lyr for lyr in self.viewer.layers
                if isinstance(lyr, Labels) and layer_project(lyr) is project]
        if project.labels is None:
            self._quiet += 1
            try:
                for lyr in ours:
                    self.viewer.layers.remove(lyr)
            finally:
                self._quiet -= 1
            return
        if self.project_labels_layer() is not None:
            return
        self._quiet += 1
        try:
            if ours:  # the layer that showed the labels before an undo took them away
                ours[0].data = project.labels
            else:
                for data, kwargs, kind in project_layer_data(project, tracks=False):
                    if kind == "labels":
                        self.viewer.add_labels(data, **kwargs)
            self.labels_combo.set_layer(self.project_labels_layer())
        finally:
            self._quiet -= 1
        self._watch_painting()
        self._bind_layer_hotkeys()
        self.project_changed.emit(project)

    def _watch_painting(self) -> None:
        """Record every stroke painted into the project's labels layer as one undo step."""
        layer = self.project_labels_layer()
        if layer is None or id(layer) in self._painted_layers:
            return
        self._painted_layers.add(id(layer))
        layer.events.paint.connect(lambda event, layer=layer: self._on_paint(layer, event))

    def _on_paint(self, layer: Any, event: Any) -> None:
        project = self.project
        if self.session is None or project is None or layer.data is not project.labels:
            return  # a layer no longer showing the current project
        try:
            action = self.session.paint_step(event.value)
        except (H4TracksError, ValueError) as e:
            self.notify(f"this stroke could not be recorded for undo: {e}", error=True)
            return
        if action is None:
            return
        tool = {"fill": "fill", "erase": "erase", "polygon": "polygon"}.get(
            str(layer.mode), "paint")
        action.description = f"{tool} in frame(s) {sorted(action.frames)}"
        self.session.record(action)
        self.status.setText(action.description)
        self._discarded = False
        self._update_undo_buttons()
        self.edited.emit()

    def _on_load_clicked(self) -> None:
        if not self.confirm_discard():
            return
        path = QFileDialog.getExistingDirectory(self, "Open h4tracks project (.zarr folder)")
        if path:
            self.load(path)

    def load(self, path: str | Path) -> Project | None:
        """Open a project and show it as layers (lazy; returns the project).

        Unsaved work of the current project is asked about first (Save / Discard / Cancel).
        """
        if not self.confirm_discard():
            return None
        try:
            project = open_project(path)
        except H4TracksError as e:
            self.notify(str(e), error=True)
            return None
        self.show_project(project)
        if lock.locked(project.path):
            # another program (a batch run, a terminal) is changing it: look, but save
            # elsewhere, so neither side overwrites the other
            holder = lock.describe_holder(project.path)
            project.read_only = f"{holder} was changing it"
            self.notify(f"{project.path.name} is being changed by {holder}: opened read-only "
                        "— use Save as to keep your edits", error=True)
        else:
            self.notify(f"opened {project.path}")
        self._offer_recovery(project)
        return project

    def show_project(self, project: Project) -> None:
        """Add the layers of a project and make it the current one."""
        self.project = project
        self._quiet += 1
        try:
            for data, kwargs, kind in project_layer_data(project, tracks=False):
                getattr(self.viewer, f"add_{kind}")(data, **kwargs)
            # the Tracks layer comes from the view that patches it after each edit, so the
            # first edit already finds its arrays (and features) ready
            self.tracks_view.refresh()
        finally:
            self._quiet -= 1
        self._select_project_layers(project)

    def current_project(self) -> Project:
        """The project the chosen layers show; a new one if they are not a project's views.

        Raises
        ------
        H4TracksError
            If no image layer is chosen or the layers do not fit together.
        """
        if self._layers_match_project():
            assert self.project is not None
            return self.project
        image = self.image_combo.layer()
        if image is None:
            raise H4TracksError("choose an image layer first")
        labels, tracks = self.labels_combo.layer(), self.tracks_combo.layer()
        # keep what an imported image's project knows (source, channel, provenance)
        origin = layer_project(image)
        meta = origin.metadata.model_dump() if origin is not None else {}
        meta.update(self.data_tab.metadata_changes())
        project = project_from_layers(image, labels, tracks, metadata=meta)
        self._bind_layers(project, image, labels, tracks)
        return project

    def _bind_layers(self, project: Project, image: Any, labels: Any, tracks: Any) -> None:
        """Make the chosen layers views of ``project`` (painting then edits the project)."""
        self.project = project
        self._quiet += 1
        try:
            for layer in (image, labels, tracks):
                if layer is not None:
                    layer.metadata[PROJECT_KEY] = project
            if labels is not None and labels.data is not project.labels:
                labels.data = project.labels
        finally:
            self._quiet -= 1
        self._watch_painting()
        self.project_changed.emit(project)
