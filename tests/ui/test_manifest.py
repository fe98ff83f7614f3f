"""The npe2 manifest is valid and every command it names imports."""

import importlib

from npe2 import PluginManifest


def test_manifest_contributions_resolve():
    manifest = PluginManifest.from_distribution("h4tracks")
    contrib = manifest.contributions
    assert {w.command for w in contrib.widgets} == {"h4tracks.main_widget", "h4tracks.lineage_view"}
    assert [r.filename_patterns for r in contrib.readers] == [["*.zarr"]]
    assert [s.key for s in contrib.sample_data] == ["migrating_cells"]
    for command in contrib.commands:
        module, _, name = command.python_name.partition(":")
        assert callable(getattr(importlib.import_module(module), name)), command.id
