"""How the training recipe chooses its starts: image modality, other registered models,
training from scratch at a working diameter, training frames cropped to their cells and
validation strips that hold cells."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from h4tracks.core.segmentation.models import ModelEntry, ModelRegistry, demo_entry
from h4tracks.core.segmentation.recipe import (
    HOPELESS_BASE,
    RecipeParams,
    StartModel,
    train_recipe,
)
from h4tracks.core.segmentation.recipe_data import (
    BRIGHT_FIELD,
    FLUORESCENCE,
    PHASE_CONTRAST,
    cell_widths,
    crop_to_cells,
    detect_modality,
    scratch_diameter,
)
from h4tracks.core.segmentation.recipe_validation import split_validation
from h4tracks.core.segmentation.train_project import entry_modality, registered_starts
from h4tracks.datasets.synthetic import make_movie


def rods(shape=(192, 256), n=8, width=8, length=30, seed=0) -> np.ndarray:
    """Label image of ``n`` non-overlapping rods (ellipses) at random angles."""
    from skimage.draw import ellipse

    rng = np.random.default_rng(seed)
    out = np.zeros(shape, np.uint32)
    label = 0
    for _ in range(500):
        if label == n:
            break
        cy, cx = rng.uniform(length, shape[0] - length), rng.uniform(length, shape[1] - length)
        rr, cc = ellipse(cy, cx, length / 2, width / 2, shape, rotation=rng.uniform(0, np.pi))
        if np.any(out[rr, cc]) or np.any(ndi.binary_dilation(out > 0, iterations=3)[rr, cc]):
            continue
        label += 1
        out[rr, cc] = label
    return out


def render(labels: np.ndarray, kind: str, seed: int = 0) -> np.ndarray:
    """A microscope-like uint16 image of ``labels``: fluorescence (bright cells on a dark
    background), phase contrast (dark cells with a bright halo on mid-grey) or bright field
    (slightly dark cells with a darker rim on mid-grey, no halo)."""
    rng = np.random.default_rng(seed)
    cells = (labels > 0).astype(float)
    dist = ndi.distance_transform_edt(labels == 0)
    if kind == FLUORESCENCE:
        img = 0.1 + 0.7 * ndi.gaussian_filter(cells, 1.0)
    elif kind == PHASE_CONTRAST:
        halo = np.exp(-dist / 4.0) * (labels == 0)
        img = 0.5 - 0.3 * ndi.gaussian_filter(cells, 1.0) + 0.35 * ndi.gaussian_filter(halo, 1.5)
    else:
        rim = cells * (ndi.distance_transform_edt(labels > 0) < 2)
        img = 0.5 - 0.08 * cells - 0.15 * rim
    img = img + rng.normal(0, 0.02, img.shape)
    return np.clip(img * 20_000, 0, 65_535).astype(np.uint16)


@pytest.mark.parametrize("kind", [FLUORESCENCE, PHASE_CONTRAST, BRIGHT_FIELD])
def test_modality_of_rendered_frames(kind):
    masks = [rods(seed=s) for s in range(3)]
    assert detect_modality([render(m, kind, s) for s, m in enumerate(masks)], masks) == kind


def test_modality_of_inverted_fluorescence_and_of_a_confluent_colony():
    movie = make_movie(n_frames=2, shape=(96, 96), n_cells=6, radius=7.0, seed=1)
    images, masks = list(movie.image.astype(np.float32)), list(movie.labels)
    assert detect_modality(images, masks) == FLUORESCENCE
    # the demo model's kind of data, inverted: dark cells, no halo
    assert detect_modality([im.max() - im for im in images], masks) == BRIGHT_FIELD
    # cells everywhere (no background far from them: a confluent colony): the background
    # is the seams between them
    m = np.zeros((96, 96), np.uint32)
    for i in range(8):
        for j in range(4):
            m[12 * i: 12 * i + 10, 24 * j: 24 * j + 22] = 1 + i * 4 + j
    assert detect_modality([render(m, FLUORESCENCE)], [m]) == FLUORESCENCE


def test_scratch_works_at_18_px_unless_the_cells_get_too_thin():
    wide = [rods(width=16, length=70, n=4, shape=(256, 256))]  # diameter ~33, width 16
    thin = [rods(width=6, length=90, n=4, shape=(256, 256))]  # diameter ~23, width 6
    assert np.median(cell_widths(wide)) == pytest.approx(16, abs=2)
    assert scratch_diameter(wide, 33.0) == 18.0
    # thin rods are not scaled down (they would be 3 px wide at 18 px), 10 px wide ones to
    # 6 px of width
    assert scratch_diameter(thin, 23.0) == 23.0
    mid = [rods(width=10, length=90, n=4, shape=(256, 256))]
    width = np.median(cell_widths(mid))
    assert 8 <= width <= 11
    assert scratch_diameter(mid, 40.0) == pytest.approx(40 * 6 / width)
    assert scratch_diameter(wide, 12.0) == 12.0  # small cells stay as they are
    assert scratch_diameter(wide, 33.0, fixed=25.0) == 25.0


def test_training_frames_are_cropped_to_their_cells():
    m = np.zeros((300, 500), np.uint32)
    m[100:120, 400:440] = 1
    img = np.arange(m.size, dtype=np.float32).reshape(m.shape)
    (ci,), (cm,) = crop_to_cells([img], [m], 30)
    assert cm.shape == (80, 100) and np.count_nonzero(cm) == np.count_nonzero(m)
    np.testing.assert_array_equal(ci, img[70:150, 370:470])
    (ci,), (cm,) = crop_to_cells([img], [m], 5)  # at least 64 px a side
    assert cm.shape == (64, 64) and np.count_nonzero(cm) == np.count_nonzero(m)


def test_validation_strip_goes_where_the_cells_are():
    """A colony in the left part of a wide frame: the right strip (first in turn) would hold
    no cell, so the strip with the share of cells closest to a quarter is held out."""
    m = np.zeros((200, 400), np.uint32)
    for i in range(8):
        m[20 + 20 * i: 35 + 20 * i, 10:150] = i + 1
    _, tm, vi, vm = split_validation([m.astype(float)], [m])
    assert np.count_nonzero(vm[0]) > 0 and np.count_nonzero(tm[0]) > 0
    # the bottom strip (next in turn after the empty right one), 30 % of the frame high: 2 of
    # the 8 cells whole, none cut (a 25 % strip would cut one)
    np.testing.assert_array_equal(vm[0], m[140:])
    # cells spread over the frame: the strips still go right, bottom, left in turn
    rng = np.random.default_rng(0)
    spread = [(rng.random((160, 200)) * 9).astype(np.uint32) for _ in range(3)]
    _, _, vi, _ = split_validation(spread, spread)
    assert [v.shape for v in vi] == [(160, 50), (40, 200), (160, 50)]


def test_registered_models_as_starts_with_their_modality(cfg, demo_model, weights_file):
    registry = ModelRegistry()
    assert entry_modality(demo_entry()) == FLUORESCENCE
    assert entry_modality(ModelEntry(name="bact_phase_cp3", kind="builtin")) == PHASE_CONTRAST
    assert entry_modality(ModelEntry(name="cyto3", kind="builtin")) is None  # generalist
    registry.add_custom("phase-rods", weights_file, kind="trained",
                        provenance={"modality": PHASE_CONTRAST})
    registry.add_custom("mine", weights_file)
    starts = registered_starts(registry, demo_entry())
    # the base model is not repeated, built-ins not in cellpose's cache are left out
    assert [(s.name, s.modality) for s in starts] == [("phase-rods", PHASE_CONTRAST),
                                                      ("mine", None)]
    assert starts[0].load().net is not None


def test_recipe_scores_registered_models_of_the_modality_and_fine_tunes_the_best(tmp_path):
    """Fluorescence frames: a registered phase-contrast model is not considered, one of
    fluorescence is scored untrained and fine-tuned in the trials next to the base model and
    a network from scratch."""
    from h4tracks.core.segmentation.models import load_cellpose_model

    movie = make_movie(n_frames=3, shape=(64, 64), n_cells=5, radius=6.0, seed=3)
    demo = lambda: load_cellpose_model(demo_entry())[0]  # noqa: E731
    loaded = []

    def phase():
        loaded.append("phase")
        return demo()

    r = train_recipe(
        list(movie.image), list(movie.labels), tmp_path / "m.pth", base=demo,
        base_modality=FLUORESCENCE, cores=1,
        others=[StartModel("fluo", demo, FLUORESCENCE), StartModel("phase", phase,
                                                                   PHASE_CONTRAST)],
        params=RecipeParams(epochs=6, patch_size=64, batch_size=4))
    assert r.modality == FLUORESCENCE
    assert set(r.screened) == {"fluo"} and not loaded  # the phase model was never loaded
    assert r.screened["fluo"] == pytest.approx(r.base_score)  # the same weights
    assert list(r.trials) == ["finetune-library", "finetune-library:fluo", "scratch"]
    assert r.as_provenance()["modality"] == FLUORESCENCE
    assert not list(tmp_path.glob(".m.trial-*"))


def test_phase_contrast_colony_trains_from_scratch_first(tmp_path):
    """The synthetic colony in phase contrast (dark rods, a bright halo around the colony,
    faint seams) measures like the real E. coli movie (contrast -0.3 to -0.5, halo ~0.27):
    with the fluorescence demo model as base the recipe tries a network from scratch first,
    where a fine-tune of the demo model found almost nothing on the real movie."""
    from h4tracks.core.segmentation.models import load_cellpose_model
    from h4tracks.core.segmentation.recipe_data import modality_measures
    from h4tracks.testing.colony import make_colony

    colony = make_colony(n_frames=3, shape=(128, 128), n_start_cells=10, seed=1,
                         modality="phase contrast")
    images, masks = list(colony.image), list(colony.labels)
    contrast, halo = modality_measures(images, masks)
    assert contrast < -0.2 and halo > 0.15
    fluo = make_colony(n_frames=3, shape=(128, 128), n_start_cells=10, seed=1)
    np.testing.assert_array_equal(fluo.labels, colony.labels)  # only the imaging differs
    assert detect_modality(list(fluo.image), masks) == FLUORESCENCE
    demo = lambda: load_cellpose_model(demo_entry())[0]  # noqa: E731
    r = train_recipe(images, masks, tmp_path / "m.pth", base=demo,
                     base_modality=FLUORESCENCE, cores=1,
                     params=RecipeParams(epochs=4, patch_size=64, batch_size=4))
    assert r.modality == PHASE_CONTRAST
    # untrained, the demo model finds almost none of these rods: it gets no trial, and the
    # trials' time goes to the network from scratch
    assert r.base_score < HOPELESS_BASE
    assert list(r.trials) == ["scratch"]
    # candidates asked for are run as asked, hopeless base or not
    asked = train_recipe(images, masks, tmp_path / "a.pth", base=demo,
                         base_modality=FLUORESCENCE, cores=1,
                         params=RecipeParams(epochs=2, patch_size=64, batch_size=4,
                                             candidates=["finetune-library", "scratch"]))
    assert list(asked.trials) == ["finetune-library", "scratch"]


def test_a_base_of_another_modality_that_finds_cells_is_tried_after_scratch(tmp_path):
    """A base model said to be of another modality than the curated frames' but which finds
    their cells untrained still gets a trial (after scratch, which wins ties)."""
    from h4tracks.core.segmentation.models import load_cellpose_model

    movie = make_movie(n_frames=3, shape=(64, 64), n_cells=5, radius=6.0, seed=3)
    demo = lambda: load_cellpose_model(demo_entry())[0]  # noqa: E731
    r = train_recipe(list(movie.image), list(movie.labels), tmp_path / "m.pth", base=demo,
                     base_modality=PHASE_CONTRAST, cores=1,
                     params=RecipeParams(epochs=4, patch_size=64, batch_size=4))
    assert r.modality == FLUORESCENCE and r.base_score >= HOPELESS_BASE
    assert list(r.trials) == ["scratch", "finetune-library"]
