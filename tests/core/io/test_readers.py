"""Tests of movie import (h4tracks.core.io.readers) on real files written with tifffile."""

from __future__ import annotations

import pickle
import time
from pathlib import Path

import dask.array as da
import numpy as np
import pytest
import tifffile

from h4tracks.core.io import readers
from h4tracks.core.io.readers import (
    ImportedMovie,
    as_label_frame,
    read_image,
    read_labels,
    supported_suffixes,
    validate_image_array,
    validate_labels_array,
)
from h4tracks.errors import InputError

RNG = np.random.default_rng(7)


def _movie(shape: tuple[int, ...], dtype: type = np.uint16) -> np.ndarray:
    high = 250 if dtype == np.uint8 else 4000
    return RNG.integers(0, high, shape).astype(dtype)


def _plain(path: Path, data: np.ndarray) -> Path:
    # minisblack: tifffile would otherwise store a 3- or 4-frame uint8 stack as RGB.
    tifffile.imwrite(path, data, photometric="minisblack")
    return path


# --------------------------------------------------------------------------------------------
# plain TIFF


@pytest.mark.parametrize("dtype", [np.uint16, np.uint8])
def test_plain_3d_tiff_keeps_dtype_and_values(tmp_path: Path, dtype: type) -> None:
    data = _movie((6, 24, 30), dtype)
    path = _plain(tmp_path / "movie.tif", data)

    movie = read_image(path)

    assert isinstance(movie, ImportedMovie)
    assert isinstance(movie.data, da.Array)
    assert movie.data.dtype == dtype
    assert movie.data.shape == (6, 24, 30)
    assert movie.data.chunks[0] == (1,) * 6  # one chunk per frame
    np.testing.assert_array_equal(movie.data.compute(), data)
    np.testing.assert_array_equal(movie.data[4].compute(), data[4])
    assert movie.source == str(path.resolve())
    assert movie.channel is None
    # bioio reports the pages of a plain multi-page TIFF as Z, which is read as time.
    assert movie.dims == "T=1,C=1,Z=6,Y=24,X=30"
    assert any("Z axis read as time" in note for note in movie.notes)
    # plain TIFFs carry no calibration (bioio would claim 1.0 µm here)
    assert movie.pixel_size is None
    assert movie.frame_interval is None


def test_2d_file_is_a_single_frame(tmp_path: Path) -> None:
    data = _movie((20, 25))
    movie = read_image(_plain(tmp_path / "single.tif", data))
    assert movie.data.shape == (1, 20, 25)
    np.testing.assert_array_equal(movie.data.compute()[0], data)
    assert movie.notes == []


@pytest.mark.parametrize(
    "write_kwargs",
    [
        {"compression": "zlib"},  # decoded page by page
        {"byteorder": ">"},  # memory-mapped, must come back in native byte order
        {"volumetric": True, "tile": (1, 16, 16), "compression": "zlib"},  # zarr store
    ],
    ids=["compressed", "big-endian", "tiled-volume"],
)
def test_other_tiff_layouts_read_correctly(tmp_path: Path, write_kwargs: dict) -> None:
    data = _movie((5, 32, 48))
    path = tmp_path / "layout.tif"
    tifffile.imwrite(path, data, photometric="minisblack", **write_kwargs)
    movie = read_image(path)
    assert movie.data.dtype == np.dtype(np.uint16)
    assert movie.data.dtype.isnative
    np.testing.assert_array_equal(movie.data.compute(), data)
    np.testing.assert_array_equal(movie.data[3, 5:9, 7].compute(), data[3, 5:9, 7])


def test_page_by_page_tiff_reads_correctly(tmp_path: Path) -> None:
    data = _movie((4, 16, 20))
    path = tmp_path / "pages.tif"
    with tifffile.TiffWriter(path) as tw:
        for frame in data:
            tw.write(frame, contiguous=False, metadata=None)
    movie = read_image(path)
    np.testing.assert_array_equal(movie.data.compute(), data)
    np.testing.assert_array_equal(movie.data[::-2].compute(), data[::-2])


def test_bioio_fallback_gives_the_same_frames(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Layouts the tifffile fast path does not recognise go through bioio's own dask data.
    data = _movie((4, 2, 16, 20))
    path = tmp_path / "hyper.tif"
    tifffile.imwrite(path, data, imagej=True, metadata={"axes": "TCYX"})
    monkeypatch.setattr(readers, "_tiff_frames", lambda *args, **kwargs: None)
    movie = read_image(path, channel=1)
    assert movie.data.chunks[0] == (1,) * 4
    np.testing.assert_array_equal(movie.data.compute(), data[:, 1])


def test_lazy_data_survives_pickling(tmp_path: Path) -> None:
    # Needed by process-based dask schedulers: the file is reopened after unpickling.
    data = _movie((3, 8, 8))
    movie = read_image(_plain(tmp_path / "movie.tif", data))
    movie.data[0].compute()  # opened before pickling
    restored = pickle.loads(pickle.dumps(movie.data))
    np.testing.assert_array_equal(restored.compute(), data)


def test_reading_writes_nothing(tmp_path: Path) -> None:
    _plain(tmp_path / "movie.tif", _movie((3, 8, 8)))
    before = sorted(p.name for p in tmp_path.iterdir())
    read_image(tmp_path / "movie.tif").data.compute()
    read_labels(tmp_path / "movie.tif").compute()
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_read_is_lazy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = _movie((200, 64, 64))
    path = _plain(tmp_path / "long.tif", data)
    read_image(_plain(tmp_path / "warmup.tif", data[:2]))  # pay the import cost up front

    frames_read: list[int] = []
    original = readers._TiffFrames._read

    def counting_read(self: readers._TiffFrames, key: tuple[slice, ...]) -> np.ndarray:
        out = original(self, key)
        frames_read.append(out.shape[0])
        return out

    monkeypatch.setattr(readers._TiffFrames, "_read", counting_read)
    start = time.perf_counter()
    movie = read_image(path)
    elapsed = time.perf_counter() - start

    assert isinstance(movie.data, da.Array)
    assert movie.data.shape == (200, 64, 64)
    assert sum(frames_read) == 1  # only the eager first-frame check
    assert elapsed < 5.0
    np.testing.assert_array_equal(movie.data[150].compute(), data[150])
    assert sum(frames_read) == 2


# --------------------------------------------------------------------------------------------
# ImageJ


def test_imagej_hyperstack_channel_by_index(tmp_path: Path) -> None:
    data = _movie((5, 2, 16, 20))
    path = tmp_path / "hyper.tif"
    tifffile.imwrite(path, data, imagej=True, metadata={"axes": "TCYX"})

    movie = read_image(path, channel=1)

    assert movie.data.shape == (5, 16, 20)
    np.testing.assert_array_equal(movie.data.compute(), data[:, 1])
    assert movie.channel == 1  # ImageJ has no channel names: reported by index
    assert len(movie.channel_names) == 2
    assert movie.dims == "T=5,C=2,Z=1,Y=16,X=20"


def test_imagej_channel_required_and_checked(tmp_path: Path) -> None:
    path = tmp_path / "hyper.tif"
    tifffile.imwrite(path, _movie((3, 2, 8, 8)), imagej=True, metadata={"axes": "TCYX"})

    with pytest.raises(InputError, match=r"hyper\.tif: the file has 2 channels \(0, 1\)"):
        read_image(path)
    with pytest.raises(InputError, match=r"channel 2 does not exist.*\(0, 1\)"):
        read_image(path, channel=2)
    with pytest.raises(InputError, match="channel 'GFP' does not exist"):
        read_image(path, channel="GFP")


def test_imagej_z_stack_read_as_time(tmp_path: Path) -> None:
    data = _movie((7, 16, 20))
    path = tmp_path / "zstack.tif"
    tifffile.imwrite(path, data, imagej=True, metadata={"axes": "ZYX"})

    movie = read_image(path)
    assert movie.data.shape == (7, 16, 20)
    np.testing.assert_array_equal(movie.data.compute(), data)
    assert movie.dims == "T=1,C=1,Z=7,Y=16,X=20"
    assert any("Z axis read as time" in note for note in movie.notes)

    forced = read_image(path, time_axis="Z")
    assert forced.data.shape == (7, 16, 20)
    assert forced.notes == []
    with pytest.raises(InputError, match=r"zstack\.tif: 3D \(Z\) stacks are not supported"):
        read_image(path, time_axis="T")


@pytest.mark.parametrize("unit", ["um", "micron", "\\u00B5m"])
def test_imagej_pixel_size_and_frame_interval(tmp_path: Path, unit: str) -> None:
    path = tmp_path / "calibrated.tif"
    tifffile.imwrite(
        path,
        _movie((4, 16, 20)),
        imagej=True,
        resolution=(1 / 0.325, 1 / 0.325),
        metadata={"axes": "TYX", "unit": unit, "finterval": 2.5},
    )
    movie = read_image(path)
    assert movie.pixel_size == pytest.approx(0.325)
    assert movie.frame_interval == pytest.approx(2.5)


def test_imagej_anisotropic_pixels_use_x(tmp_path: Path) -> None:
    path = tmp_path / "aniso.tif"
    tifffile.imwrite(
        path,
        _movie((2, 8, 8)),
        imagej=True,
        resolution=(1 / 0.5, 1 / 0.25),
        metadata={"axes": "TYX", "unit": "um"},
    )
    movie = read_image(path)
    assert movie.pixel_size == pytest.approx(0.5)
    assert any("differs between Y" in note for note in movie.notes)


def test_imagej_time_unit_is_converted(tmp_path: Path) -> None:
    path = tmp_path / "minutes.tif"
    tifffile.imwrite(
        path,
        _movie((3, 8, 8)),
        imagej=True,
        metadata={"axes": "TYX", "finterval": 1.5, "tunit": "min"},
    )
    assert read_image(path).frame_interval == pytest.approx(90.0)


def test_imagej_without_unit_has_no_pixel_size(tmp_path: Path) -> None:
    path = tmp_path / "uncalibrated.tif"
    tifffile.imwrite(path, _movie((3, 8, 8)), imagej=True, metadata={"axes": "TYX"})
    movie = read_image(path)
    assert movie.pixel_size is None
    assert movie.frame_interval is None


# --------------------------------------------------------------------------------------------
# OME-TIFF


def _ome(path: Path, data: np.ndarray, **extra: object) -> Path:
    metadata = {
        "axes": "TCYX",
        "PhysicalSizeX": 0.65,
        "PhysicalSizeY": 0.65,
        "TimeIncrement": 5.0,
        "TimeIncrementUnit": "s",
        "Channel": {"Name": ["DAPI", "GFP"]},
    }
    metadata.update(extra)
    tifffile.imwrite(path, data, metadata=metadata)
    return path


def test_ome_tiff_channel_by_name_and_metadata(tmp_path: Path) -> None:
    data = _movie((4, 2, 16, 20))
    movie = read_image(_ome(tmp_path / "cells.ome.tif", data), channel="GFP")

    assert movie.channel == "GFP"
    assert movie.channel_names == ["DAPI", "GFP"]
    assert movie.data.dtype == np.uint16
    np.testing.assert_array_equal(movie.data.compute(), data[:, 1])
    assert movie.pixel_size == pytest.approx(0.65)
    assert movie.frame_interval == pytest.approx(5.0)
    assert movie.dims == "T=4,C=2,Z=1,Y=16,X=20"


def test_ome_tiff_units_are_converted(tmp_path: Path) -> None:
    path = _ome(
        tmp_path / "units.ome.tif",
        _movie((3, 2, 8, 8)),
        PhysicalSizeX=650,
        PhysicalSizeXUnit="nm",
        PhysicalSizeY=650,
        PhysicalSizeYUnit="nm",
        TimeIncrement=250,
        TimeIncrementUnit="ms",
    )
    movie = read_image(path, channel=0)
    assert movie.channel == "DAPI"
    assert movie.pixel_size == pytest.approx(0.65)
    assert movie.frame_interval == pytest.approx(0.25)


def test_ome_tiff_missing_channel_lists_names(tmp_path: Path) -> None:
    path = _ome(tmp_path / "cells.ome.tif", _movie((2, 2, 8, 8)))
    with pytest.raises(InputError, match=r"cells\.ome\.tif: .*0: 'DAPI', 1: 'GFP'"):
        read_image(path)
    with pytest.raises(InputError, match="channel 'RFP' does not exist"):
        read_image(path, channel="RFP")


def test_multi_scene_defaults_to_first_scene(tmp_path: Path) -> None:
    first, second = _movie((3, 16, 20)), _movie((2, 8, 10))
    path = tmp_path / "scenes.ome.tif"
    with tifffile.TiffWriter(path, ome=True) as tw:
        tw.write(first, metadata={"axes": "TYX"})
        tw.write(second, metadata={"axes": "TYX"})

    movie = read_image(path)
    np.testing.assert_array_equal(movie.data.compute(), first)
    assert any("2 scenes" in note for note in movie.notes)
    np.testing.assert_array_equal(read_image(path, scene=1).data.compute(), second)
    with pytest.raises(InputError, match=r"scene 5 does not exist"):
        read_image(path, scene=5)


# --------------------------------------------------------------------------------------------
# bad image files


def test_rgb_tiff_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "photo.tif"
    tifffile.imwrite(path, _movie((16, 20, 3), np.uint8), photometric="rgb")
    with pytest.raises(InputError, match=r"photo\.tif: RGB images are not supported"):
        read_image(path)


def test_time_and_z_together_are_rejected(tmp_path: Path) -> None:
    path = tmp_path / "4d.tif"
    tifffile.imwrite(path, _movie((3, 2, 8, 8)), imagej=True, metadata={"axes": "TZYX"})
    with pytest.raises(InputError, match=r"4d\.tif: .*T=3.*Z=2"):
        read_image(path)


def test_empty_file_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "empty.tif"
    path.write_bytes(b"")
    with pytest.raises(InputError, match=r"empty\.tif: the file is empty"):
        read_image(path)


def test_corrupt_bytes_are_rejected(tmp_path: Path) -> None:
    path = tmp_path / "corrupt.tif"
    path.write_bytes(b"this is not a TIFF file" * 20)
    with pytest.raises(InputError, match=r"corrupt\.tif: not a readable TIFF"):
        read_image(path)


@pytest.mark.parametrize("fraction", [0.1, 0.5, 0.9])
@pytest.mark.parametrize("imagej", [False, True])
def test_truncated_tiff_is_rejected(tmp_path: Path, fraction: float, imagej: bool) -> None:
    full = tmp_path / "full.tif"
    metadata = {"axes": "TYX"} if imagej else {}
    tifffile.imwrite(
        full, _movie((8, 32, 32)), imagej=imagej, photometric="minisblack", metadata=metadata
    )
    content = full.read_bytes()
    path = tmp_path / "cut.tif"
    path.write_bytes(content[: int(len(content) * fraction)])
    with pytest.raises(InputError, match=r"cut\.tif: .*(truncated|damaged)"):
        read_image(path)


def test_imagej_with_intact_pixels_but_cut_trailing_ifds_reads(tmp_path: Path) -> None:
    # ImageJ readers need only the first IFD (files > 4 GB have no others), so a file
    # whose pixel data is complete is read even when its last IFD is cut off.
    data = _movie((8, 32, 32))
    full = tmp_path / "full.tif"
    tifffile.imwrite(full, data, imagej=True, metadata={"axes": "TYX"})
    with tifffile.TiffFile(full) as tif:
        cut = tif.pages[-1].offset + 10
        assert cut > tif.series[0].dataoffset + tif.series[0].nbytes
    path = tmp_path / "cut.tif"
    path.write_bytes(full.read_bytes()[:cut])
    np.testing.assert_array_equal(read_image(path).data.compute(), data)


def test_truncated_page_by_page_tiff_is_rejected(tmp_path: Path) -> None:
    # Every IFD precedes its own strip here, so cutting into the last strip leaves a valid
    # IFD chain: only the data extent shows the damage (frame 0 still reads fine).
    full = tmp_path / "full.tif"
    with tifffile.TiffWriter(full) as tw:
        for frame in _movie((4, 32, 32)):
            tw.write(frame, contiguous=False, metadata=None)
    with tifffile.TiffFile(full) as tif:
        cut = tif.pages[-1].dataoffsets[0] + 100
    path = tmp_path / "cut.tif"
    path.write_bytes(full.read_bytes()[:cut])
    with pytest.raises(InputError, match=r"cut\.tif: the file is truncated"):
        read_image(path)


def test_zero_frame_tiff_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "noframes.tif"
    with pytest.warns(UserWarning):
        tifffile.imwrite(path, np.zeros((0, 8, 8), np.uint16))
    with pytest.raises(InputError, match=r"noframes\.tif: the movie is empty"):
        read_image(path)


def test_missing_path_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"nothere\.tif: file not found"):
        read_image(tmp_path / "nothere.tif")


def test_directory_is_rejected(tmp_path: Path) -> None:
    folder = tmp_path / "frames"
    folder.mkdir()
    with pytest.raises(InputError, match=r"frames: is a folder"):
        read_image(folder)


def test_unsupported_suffix_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "movie.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 32)
    with pytest.raises(InputError, match=r"movie\.png: unsupported file type '\.png'"):
        read_image(path)


def test_complex_image_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "complex.tif"
    tifffile.imwrite(path, np.ones((3, 8, 8), np.complex64), photometric="minisblack")
    with pytest.raises(InputError, match=r"complex\.tif: .*complex64"):
        read_image(path)


def test_bad_time_axis_argument(tmp_path: Path) -> None:
    path = _plain(tmp_path / "movie.tif", _movie((3, 8, 8)))
    with pytest.raises(InputError, match="time_axis"):
        read_image(path, time_axis="C")


def test_supported_suffixes() -> None:
    suffixes = supported_suffixes()
    assert {".tif", ".tiff", ".ome.tif"} <= set(suffixes)
    assert all(s.startswith(".") and s == s.lower() for s in suffixes)


# --------------------------------------------------------------------------------------------
# labels


def test_read_labels_returns_lazy_uint32(tmp_path: Path) -> None:
    labels = RNG.integers(0, 50, (5, 16, 20)).astype(np.int32)
    path = _plain(tmp_path / "labels.tif", labels)

    out = read_labels(path, expected_shape=(5, 16, 20))

    assert isinstance(out, da.Array)
    assert out.dtype == np.uint32
    np.testing.assert_array_equal(out.compute(), labels)


def test_read_labels_accepts_bool(tmp_path: Path) -> None:
    mask = RNG.random((3, 8, 8)) > 0.5
    out = read_labels(_plain(tmp_path / "mask.tif", mask))
    np.testing.assert_array_equal(out.compute(), mask.astype(np.uint32))


def test_float_labels_are_rejected(tmp_path: Path) -> None:
    path = _plain(tmp_path / "labels.tif", RNG.random((3, 8, 8)).astype(np.float32))
    with pytest.raises(InputError, match=r"labels\.tif: labels must be integers, got float32"):
        read_labels(path)


def test_label_shape_mismatch_names_both_shapes(tmp_path: Path) -> None:
    path = _plain(tmp_path / "labels.tif", np.zeros((4, 16, 20), np.uint16))
    with pytest.raises(InputError, match=r"labels\.tif: .*\(4, 16, 20\).*\(5, 16, 20\)"):
        read_labels(path, expected_shape=(5, 16, 20))


def test_negative_labels_fail_while_streaming(tmp_path: Path) -> None:
    labels = np.ones((3, 8, 8), np.int16)
    labels[2, 0, 0] = -1
    out = read_labels(_plain(tmp_path / "labels.tif", labels))  # frame 0 is fine
    out[1].compute()
    with pytest.raises(InputError, match=r"labels\.tif: labels must not be negative"):
        out[2].compute()


def test_multichannel_labels_are_rejected(tmp_path: Path) -> None:
    path = tmp_path / "labels.tif"
    tifffile.imwrite(
        path, np.zeros((3, 2, 8, 8), np.uint16), imagej=True, metadata={"axes": "TCYX"}
    )
    with pytest.raises(InputError, match="single-channel"):
        read_labels(path)


def test_as_label_frame() -> None:
    frame = np.array([[0, 1], [2, 3]], np.int64)
    out = as_label_frame(frame)
    assert out.dtype == np.uint32
    np.testing.assert_array_equal(out, frame)
    assert as_label_frame(np.array([[True, False]])).dtype == np.uint32

    with pytest.raises(InputError, match=r"seg\.tif: labels must not be negative, found -2"):
        as_label_frame(np.array([[0, -2]], np.int32), source="seg.tif")
    with pytest.raises(InputError, match="does not fit in 32 bits"):
        as_label_frame(np.array([[2**32]], np.uint64))
    with pytest.raises(InputError, match="labels must be integers, got float64"):
        as_label_frame(np.zeros((2, 2)))
    with pytest.raises(InputError, match=r"must be 2D \(Y, X\)"):
        as_label_frame(np.zeros((2, 2, 2), np.uint32))


# --------------------------------------------------------------------------------------------
# in-memory validation


def test_validate_image_array_accepts_movies() -> None:
    validate_image_array(np.zeros((4, 5), np.uint16))
    validate_image_array(np.zeros((2, 4, 5), np.float32))
    validate_image_array(da.zeros((100, 64, 3), dtype=np.uint16))  # X=3, not uint8: no RGB


@pytest.mark.parametrize(
    ("arr", "kwargs", "match"),
    [
        (np.zeros((4, 5, 3), np.uint8), {}, "RGB images are not supported"),
        (np.zeros((2, 4, 5, 4), np.uint8), {}, "RGB images are not supported"),
        (np.zeros((4, 5, 3), np.uint16), {"rgb": True}, "RGB images are not supported"),
        (np.zeros((0, 4, 5), np.uint16), {}, "empty"),
        (np.zeros((2, 2, 4, 5), np.uint16), {}, r"2D \(Y, X\) or 3D \(T, Y, X\)"),
        (np.zeros((5,), np.uint16), {}, r"2D \(Y, X\) or 3D \(T, Y, X\)"),
        (np.zeros((2, 4, 5), np.complex64), {}, "complex64"),
        (np.zeros((2, 4, 5), bool), {}, "bool"),
    ],
)
def test_validate_image_array_rejects(arr: np.ndarray, kwargs: dict, match: str) -> None:
    with pytest.raises(InputError, match=f"^layer: .*{match}"):
        validate_image_array(arr, name="layer", **kwargs)


def test_validate_labels_array() -> None:
    validate_labels_array(np.zeros((3, 4, 5), np.int32), shape=(3, 4, 5))
    validate_labels_array(np.zeros((4, 5), np.uint8), shape=(1, 4, 5))
    validate_labels_array(da.zeros((3, 4, 5), dtype=bool))
    with pytest.raises(InputError, match="labels must be integers, got float32"):
        validate_labels_array(np.zeros((3, 4, 5), np.float32))
    with pytest.raises(InputError, match=r"\(3, 4, 5\).*\(3, 4, 6\)"):
        validate_labels_array(np.zeros((3, 4, 5), np.uint32), shape=(3, 4, 6))
    with pytest.raises(InputError, match=r"2D \(Y, X\) or 3D"):
        validate_labels_array(np.zeros((2, 3, 4, 5), np.uint32))


@pytest.mark.parametrize("shape", [(100,), (1, 100), (6, 1, 100), (5, 4, 100)])
def test_files_too_small_to_hold_cells_are_refused(tmp_path, shape) -> None:
    """A 1-D signal (or frames a few pixels high) is not a movie: one sentence, no project."""
    path = tmp_path / "signal.tif"
    tifffile.imwrite(path, np.arange(int(np.prod(shape)), dtype=np.uint16).reshape(shape))
    with pytest.raises(InputError, match="too small to hold cells") as info:
        read_image(path)
    assert "\n" not in str(info.value)
