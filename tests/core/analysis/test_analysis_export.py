"""Tests of h4tracks.core.analysis.export: CSV files that read back exactly."""

from __future__ import annotations

import csv
import itertools

import numpy as np
import pytest

from h4tracks.core.analysis import (
    Table,
    track_metrics,
    write_csv,
    write_detections_csv,
    write_track_report,
)
from h4tracks.core.graph import TrackGraph
from h4tracks.errors import InputError

pd = pytest.importorskip("pandas")


def sample_graph() -> TrackGraph:
    g = TrackGraph()
    pts = {1: [(0, 0.1, 0.2), (1, 1.3, 2.7), (3, 2.9, 6.1)], 2: [(0, 20.0, 20.0)],
           3: [(t, 40.0, 40.0 + 7.3 * t) for t in range(8)]}
    for lab, p in pts.items():
        for t, y, x in p:
            g.add_node((t, lab), y=y, x=x, area=12, track_id=lab)
        for a, b in itertools.pairwise(p):
            g.add_edge((a[0], lab), (b[0], lab))
    return g


def assert_tables_equal(table: Table, df) -> None:
    assert list(df.columns) == table.columns
    for c in table.columns:
        want = table[c]
        got = df[c].to_numpy()
        if want.dtype == object:
            assert list(got) == list(want)
        else:
            np.testing.assert_array_equal(got.astype(want.dtype), want, err_msg=c)


@pytest.mark.parametrize(("sep", "decimal", "bom"), [(";", ",", True), (",", ".", False),
                                                      ("\t", ",", True)])
def test_round_trip_pandas(tmp_path, sep, decimal, bom):
    tab = track_metrics(sample_graph(), pixel_size=0.325, frame_interval=2.5, time_unit="min")
    path = write_csv(tab, tmp_path / "tracks.csv", sep=sep, decimal=decimal, bom=bom)
    assert path.read_bytes().startswith(b"\xef\xbb\xbf") == bom
    df = pd.read_csv(path, sep=sep, decimal=decimal, encoding="utf-8-sig")
    assert "mean_speed [µm/min]" in df.columns
    assert len(df) == 3
    assert_tables_equal(tab, df)  # floats are written with full precision


def test_comma_decimal_text(tmp_path):
    tab = Table({"track_id": [1, 2], "v [µm]": [1.5, np.nan], "ok": [True, False],
                 "name": np.array(["a;b", "c"], dtype=object)})
    path = write_csv(tab, tmp_path / "t.csv", sep=";", decimal=",", bom=False)
    text = path.read_text("utf-8").splitlines()
    assert text == ['track_id;v [µm];ok;name', '1;1,5;True;"a;b"', '2;;False;c']


def test_round_trip_numpy_only(tmp_path):
    tab = track_metrics(sample_graph())
    path = write_csv(tab, tmp_path / "t.csv", bom=False)
    with path.open(encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == tab.columns
    data = np.array([[float(v) if v else np.nan for v in r] for r in rows[1:]])
    for j, c in enumerate(tab.columns):
        np.testing.assert_array_equal(data[:, j], tab[c].astype(float))


@pytest.mark.parametrize(("sep", "decimal", "msg"), [
    (",", ",", "both ','"), (";", ";", "decimal mark must be"), (";;", ".", "one character"),
    ('"', ".", "one character"),
])
def test_bad_format(tmp_path, sep, decimal, msg):
    tab = track_metrics(sample_graph())
    with pytest.raises(InputError, match=msg):
        write_csv(tab, tmp_path / "t.csv", sep=sep, decimal=decimal)
    assert not (tmp_path / "t.csv").exists()


def test_missing_folder(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        write_csv(Table({"a": [1]}), tmp_path / "nope" / "t.csv")


def test_empty_table_writes_header(tmp_path):
    tab = track_metrics(TrackGraph())
    df = pd.read_csv(write_csv(tab, tmp_path / "e.csv"), encoding="utf-8-sig")
    assert list(df.columns) == tab.columns and len(df) == 0


def test_track_report(tmp_path):
    tab = track_metrics(sample_graph())
    tracks, summary = write_track_report(tab, tmp_path / "tracks.csv", min_length=3,
                                         min_movement=5.0, sep=";", decimal=",")
    assert summary.name == "tracks_summary.csv"
    df = pd.read_csv(tracks, sep=";", decimal=",")
    assert list(df["passes_filters"]) == [True, False, True]
    assert df["passes_filters"].dtype == bool
    s = pd.read_csv(summary, sep=";", decimal=",").set_index("metric")
    assert s.loc["tracks (all)", "n"] == 3 and s.loc["tracks passing filters", "n"] == 2
    assert s.loc["filter: n_points >=", "min"] == 3
    assert s.loc["filter: path_length [px] >=", "min"] == 5.0
    assert s.loc["n_points", "n"] == 2 and s.loc["n_points", "mean"] == pytest.approx(5.5)


def test_detections_csv(tmp_path):
    path = write_detections_csv(sample_graph(), tmp_path / "d.csv", pixel_size=0.5,
                                frame_interval=3.0, time_unit="s", sep=";", decimal=",")
    df = pd.read_csv(path, sep=";", decimal=",", encoding="utf-8-sig")
    assert list(df.columns) == ["t", "time [s]", "label", "track_id", "y [µm]", "x [µm]",
                                "area [µm²]"]
    assert len(df) == 12
    first = df.iloc[0]
    assert first["x [µm]"] == pytest.approx(0.1) and first["area [µm²]"] == pytest.approx(3.0)
    assert df["time [s]"].iloc[2] == pytest.approx(9.0)
