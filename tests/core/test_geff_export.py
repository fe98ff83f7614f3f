"""Standalone GEFF export (`h4tracks export --format geff`), read back with the geff
library's own reader and structure validator (the oracle)."""

from __future__ import annotations

import numpy as np
import pytest
import zarr
from geff import read
from geff.validate.structure import validate_structure

from h4tracks.cli import main
from h4tracks.core.project import Project
from h4tracks.core.store import open_project, save_project
from h4tracks.core.tracking import GlobalParams, track_global
from h4tracks.datasets.synthetic import make_movie


@pytest.fixture(scope="module")
def tracked(tmp_path_factory):
    m = make_movie(n_frames=8, shape=(96, 96), n_cells=6, radius=6, division_rate=0.2, seed=3)
    project = Project(m.image, m.labels)
    project.graph = track_global(m.labels, GlobalParams())
    project.metadata.pixel_size = 0.65
    project.metadata.frame_interval = 5.0
    project.metadata.time_unit = "min"
    path = save_project(project, tmp_path_factory.mktemp("p") / "p.zarr")
    return path, m


def test_geff_export_reads_back_with_the_geff_library(tracked, tmp_path, capsys):
    path, m = tracked
    out = tmp_path / "tracks.zarr"
    assert main(["export", str(path), "--format", "geff", "-o", str(out)]) == 0
    assert "wrote a GEFF" in capsys.readouterr().out
    validate_structure(str(out / "tracks"))
    g, meta = read(str(out / "tracks"))
    project = open_project(path)
    ours = project.graph
    assert g.number_of_nodes() == len(ours) and g.number_of_edges() == ours.edge_array().shape[0]
    assert ours.n_divisions > 0
    assert sum(1 for n in g.nodes if g.out_degree(n) == 2) == ours.n_divisions
    # axes: frames and pixels, scaled by the calibration
    axes = {a.name: a for a in meta.axes}
    assert axes["t"].scale == 5.0 and axes["t"].scaled_unit == "minute"
    assert axes["y"].scale == 0.65 and axes["x"].scaled_unit == "micrometer"
    assert meta.track_node_props == {"tracklet": "track_id"}
    rel = meta.related_objects[0]
    assert rel.type == "labels" and rel.node_prop == "seg_id" and rel.path == "../labels"
    # seg_id is the cell's value in the exported labels, at its centroid's frame
    labels = zarr.open_array(str(out / "labels"), mode="r")[:]
    assert np.array_equal(labels, np.asarray(m.labels, np.uint32))
    for _, d in g.nodes(data=True):
        t, seg = int(d["t"]), int(d["seg_id"])
        assert np.any(labels[t] == seg)
        yy, xx = np.nonzero(labels[t] == seg)
        assert abs(yy.mean() - d["y"]) < 0.51 and abs(xx.mean() - d["x"]) < 0.51
    # track ids as tracklets: linked 1:1 nodes share them
    for a, b in g.edges:
        if g.out_degree(a) == 1:
            assert g.nodes[a]["track_id"] == g.nodes[b]["track_id"]


def test_geff_export_refuses_a_project_without_labels(tmp_path, capsys):
    path = save_project(Project(np.zeros((3, 16, 16), np.uint16)), tmp_path / "e.zarr")
    assert main(["export", str(path), "--format", "geff", "-o", str(tmp_path / "o.zarr")]) == 2
    err = capsys.readouterr().err.strip()
    assert "no segmentation" in err and "\n" not in err
    assert not (tmp_path / "o.zarr").exists()


def test_geff_export_import_round_trip(tracked, tmp_path, capsys):
    """export --format geff -> new IMAGE --tracks: the same graph and calibration."""
    import tifffile

    path, m = tracked
    out = tmp_path / "t.zarr"
    assert main(["export", str(path), "--format", "geff", "-o", str(out)]) == 0
    tifffile.imwrite(tmp_path / "img.tif", m.image)
    back = tmp_path / "back.zarr"
    assert main(["new", str(tmp_path / "img.tif"), "--tracks", str(out), "-o", str(back)]) == 0
    a, b = open_project(path), open_project(back)
    assert np.array_equal(a.graph.edge_array(), b.graph.edge_array())
    assert a.graph.n_divisions == b.graph.n_divisions
    assert b.metadata.pixel_size == 0.65 and b.metadata.frame_interval == 5.0
    assert b.metadata.time_unit == "min"
    assert np.array_equal(np.asarray(b.labels.frame(3)), np.asarray(a.labels.frame(3)))
    capsys.readouterr()
    # a GEFF without a segmentation cannot be placed: one sentence, nothing written
    bare = tmp_path / "bare.geff"
    from h4tracks.core.geff_io import write_geff_graph
    write_geff_graph(a.graph, bare)
    assert main(["new", str(tmp_path / "img.tif"), "--tracks", str(bare),
                 "-o", str(tmp_path / "x.zarr")]) == 2
    err = capsys.readouterr().err.strip()
    assert "declares no segmentation" in err and "\n" not in err
    assert not (tmp_path / "x.zarr").exists()


def _bad_geffs(tracked, tmp_path):
    """Our export spoiled three ways: no axes, a link to a node it does not list, labels that
    lose a cell the graph has."""
    from geff_spec import GeffMetadata

    path, _m = tracked
    good = tmp_path / "good.zarr"
    assert main(["export", str(path), "--format", "geff", "-o", str(good)]) == 0
    out = {}
    for name in ("no_axes", "unknown_node", "labels_disagree"):
        import shutil

        bad = tmp_path / f"{name}.zarr"
        shutil.copytree(good, bad)
        out[name] = bad
    meta = GeffMetadata.read(str(out["no_axes"] / "tracks"))
    meta.model_copy(update={"axes": None}).write(str(out["no_axes"] / "tracks"))
    edges = zarr.open_array(str(out["unknown_node"] / "tracks" / "edges" / "ids"), mode="r+")
    e = edges[:]
    e[0, 1] = 987654321  # no such node
    edges[:] = e
    labels = zarr.open_array(str(out["labels_disagree"] / "labels"), mode="r+")
    frame = labels[2]
    frame[frame == frame.max()] = 0  # a cell of the graph vanishes from the labels
    labels[2] = frame
    return out


@pytest.mark.parametrize(("bad", "says"), [
    ("no_axes", "declares no time axis"),
    ("unknown_node", "lead to nodes it does not list"),
    ("labels_disagree", "have no cell in its labels"),
])
def test_bad_geff_is_one_sentence_and_creates_nothing(tracked, tmp_path, bad, says):
    """create_project (behind `h4tracks new` and the Data tab's Import GEFF) refuses each
    spoiled GEFF with one line and writes no project."""
    import tifffile

    from h4tracks.core.io.importing import create_project
    from h4tracks.errors import InputError

    tifffile.imwrite(tmp_path / "img.tif", tracked[1].image)
    geff = _bad_geffs(tracked, tmp_path)[bad]
    with pytest.raises(InputError) as info:
        create_project(tmp_path / "new.zarr", tmp_path / "img.tif", tracks=geff)
    text = str(info.value)
    assert says in text and "\n" not in text, text
    assert not (tmp_path / "new.zarr").exists()
