"""The recipe with few validation cells: a final stretch lets the chosen model learn from
the validation strips too, straight after the trials, or after a main run that averages its
weights when the winner has an untrained start still to beat."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from h4tracks.core.segmentation import recipe, recipe_stretch
from h4tracks.core.segmentation.models import ModelEntry, load_cellpose_model
from h4tracks.core.segmentation.recipe import RecipeParams, train_recipe
from h4tracks.core.segmentation.recipe_data import CROP_MARGIN, crop_to_cells
from h4tracks.core.segmentation.training import (
    TrainingCancelled,
    TrainParams,
    mask_diameters,
    train_cellpose,
)
from h4tracks.datasets.synthetic import make_movie

TINY = dict(patch_size=64, batch_size=4, candidates=["scratch"])


@pytest.fixture(scope="module")
def movie():
    return make_movie(n_frames=3, shape=(64, 64), n_cells=5, radius=6.0, seed=3)


@pytest.fixture
def calls(monkeypatch):
    """Every train_cellpose call of the recipe: (pixels of its images, its TrainParams,
    its TrainResult), the last one once it has finished."""
    seen: list[tuple] = []

    def spy(images, masks, save_to, **kw):
        seen.append((sum(int(np.size(im)) for im in images), kw["params"], None))
        r = train_cellpose(images, masks, save_to, **kw)
        seen[-1] = (*seen[-1][:2], r)
        return r

    monkeypatch.setattr(recipe, "train_cellpose", spy)
    monkeypatch.setattr(recipe_stretch, "train_cellpose", spy)
    return seen


def _curated_pixels(movie) -> int:
    """Pixels of the curated frames as the recipe trains on them (cropped to the cells)."""
    masks = list(movie.labels)
    d = float(mask_diameters(masks).mean())
    return sum(im.size for im in crop_to_cells(list(movie.image), masks, CROP_MARGIN * d)[0])


def test_the_winner_goes_straight_on_to_all_curated_pixels(movie, tmp_path, calls):
    """With few validation cells and no untrained start to beat, the trial's winner trains
    on the whole curated frames (validation strips included) for the rest of the budget:
    there is nothing left for the strips to choose."""
    r = train_recipe(list(movie.image), list(movie.labels), tmp_path / "m.pth",
                     params=RecipeParams(epochs=20, **TINY), cores=1)
    whole = _curated_pixels(movie)
    # the trial without the validation strips, then the stretch with them: no main run
    assert [px < whole for px, *_ in calls] == [True, False]
    assert calls[-1][0] == whole
    # the rest of an epoch budget: 14 of 20 epochs after the trial's 6
    assert [p.epochs for _, p, _ in calls] == [6, 14]
    assert calls[-1][1].learning_rate == calls[0][1].learning_rate
    # every run pads the frames' cut sides as segmentation does (RecipeParams.border_pad)
    assert [p.border_pad for _, p, _ in calls] == [RecipeParams().border_pad] * 2 == [0.5] * 2
    # the stretch averages its weights after its warm-up (2 epochs: 90 % of 14 is 13,
    # capped at the 12 after it); the trial keeps its last weights
    assert calls[1][1].warmup_epochs == 2 and calls[1][2].averaged_epochs == 12
    assert calls[0][1].average_last == 0 and calls[0][2].averaged_epochs == 0
    assert r.final_epochs == 14 and r.epochs == 6 + 14
    # the validation score reported is the trial's, the last one on held-out cells
    assert r.val_score == r.trials["scratch"]
    prov = r.as_provenance()
    assert prov["final_epochs"] == 14 and prov["final_kept"] == r.final_kept
    assert prov["main_averaged"] is False and not r.main_averaged
    # kept, or dropped by the guard (tests below): the summary says which
    assert ("(14 after the trials, all on all curated pixels)" in r.summary()) == r.final_kept
    assert ("was dropped" in r.summary()) == (not r.final_kept)
    assert not list(tmp_path.glob(".m.*"))  # no hidden weights left behind
    load_cellpose_model(ModelEntry(name="r", kind="custom", path=str(r.path)))


def test_a_winner_below_an_untrained_start_gets_a_main_run(movie, tmp_path, calls,
                                                          monkeypatch):
    """A trial that did not beat the base model untrained (here: the base scores 0.6 on the
    strips, the trial 0.5, later validations 0.7) continues on the frames without the strips,
    judged on them, with its weights averaged; the final stretch then gets a quarter."""
    from h4tracks.core.segmentation.models import demo_entry

    scores = iter([0.6, 0.5])
    monkeypatch.setattr(recipe, "score_pieces", lambda *a: next(scores, 0.7))
    r = train_recipe(list(movie.image), list(movie.labels), tmp_path / "m.pth",
                     base=lambda: load_cellpose_model(demo_entry())[0],
                     params=RecipeParams(epochs=20, **TINY), cores=1)
    whole = _curated_pixels(movie)
    assert r.base_score == 0.6 and r.trials == {"scratch": 0.5}
    assert [px < whole for px, *_ in calls] == [True, True, False]
    # a quarter of 20 epochs for the stretch, after 6 trial and 9 main ones
    assert [p.epochs for _, p, _ in calls] == [6, 9, 5]
    assert calls[-1][1].learning_rate == calls[1][1].learning_rate
    # the main run averages its weights after its warm-up (4 epochs: the trial ran 6 of
    # cellpose's 10), which caps main_average's 80 % (7 of 9 epochs) at 5
    assert calls[1][1].warmup_epochs == 4 and calls[1][1].average_last == 0.8
    assert calls[1][2].averaged_epochs == 5
    assert r.main_averaged and r.as_provenance()["main_averaged"] is True
    # the main run beat the base (0.7), and so did the stretch: it is kept
    assert r.choice == "scratch" and r.val_score == 0.7
    assert r.final_epochs == 5 and r.final_kept and r.epochs == 6 + 9 + 5
    assert "(14 after the trials, the last 5 on all curated pixels)" in r.summary()


def test_no_final_stretch_when_switched_off(movie, tmp_path, calls):
    r = train_recipe(list(movie.image), list(movie.labels), tmp_path / "m.pth",
                     params=RecipeParams(epochs=20, final_fraction=0, **TINY), cores=1)
    assert len(calls) == 2 and all(px < _curated_pixels(movie) for px, *_ in calls)
    assert [p.epochs for _, p, _ in calls] == [6, 14]
    assert r.final_epochs == 0 and "all curated pixels" not in r.summary()
    # the main run averages its 10 epochs after the warm-up (80 %: 11 of 14)
    assert calls[1][2].averaged_epochs == 10


def test_no_main_run_averaging_when_switched_off(movie, tmp_path, calls):
    r = train_recipe(list(movie.image), list(movie.labels), tmp_path / "m.pth",
                     params=RecipeParams(epochs=20, final_fraction=0, main_average=0, **TINY),
                     cores=1)
    assert [p.average_last for _, p, _ in calls] == [0, 0]
    assert [res.averaged_epochs for *_, res in calls] == [0, 0]
    assert r.as_provenance()["main_averaged"] is False


def test_no_final_stretch_when_the_strips_hold_many_cells(movie, tmp_path, calls,
                                                        monkeypatch):
    """With many validation cells the strips judge soundly and are a small share of the
    data: the main run keeps the whole budget and its best checkpoint (here: the limit
    lowered to the movie's)."""
    monkeypatch.setattr(recipe, "FEW_VAL_CELLS", 1)
    r = train_recipe(list(movie.image), list(movie.labels), tmp_path / "m.pth",
                     params=RecipeParams(epochs=20, **TINY), cores=1)
    assert [p.epochs for _, p, _ in calls] == [6, 14] and r.final_epochs == 0
    # and the main run anneals its last weights, chosen by the sound judge
    assert calls[1][1].average_last == 0 and calls[1][2].averaged_epochs == 0


def test_cancel_in_the_final_stretch_keeps_the_model_it_started_from(movie, tmp_path):
    stretching = []
    with pytest.raises(TrainingCancelled, match="final stretch") as err:
        train_recipe(list(movie.image), list(movie.labels), tmp_path / "m.pth",
                     params=RecipeParams(epochs=20, **TINY), cores=1,
                     progress=lambda f, msg: stretching.append("all curated pixels" in msg),
                     cancel=lambda: any(stretching))
    kept = err.value.result  # the trial's model, which the stretch started from
    assert kept is not None and kept.path == tmp_path / "m.pth" and kept.epochs == 6
    load_cellpose_model(ModelEntry(name="r", kind="custom", path=str(kept.path)))
    assert [p.name for p in tmp_path.iterdir()] == ["m.pth"]


def _stretch(movie, tmp_path, score, *, beat=None, seconds=None, main=None, reference=0.5):
    """The final stretch of a 3-epoch run from a tiny trained model: (epochs, kept, the
    saved file unchanged?)."""
    images, masks = list(movie.image), list(movie.labels)
    save_to = tmp_path / "m.pth"
    tp = TrainParams(epochs=3, patch_size=64, batch_size=4)
    trained = train_cellpose(images, masks, save_to, params=tp, cores=1)
    before = save_to.read_bytes()
    out = recipe_stretch._final_stretch(
        images, masks, save_to, tmp_path / ".m.final.pth", main or trained, tp, seconds,
        reference, 0.1, beat, lambda model: score, False, None, lambda e, n: None)
    assert [p.name for p in tmp_path.iterdir()] == ["m.pth"]  # nothing hidden left
    return (*out, save_to.read_bytes() == before)


@pytest.mark.parametrize("score, kept", [(0.6, True), (0.45, True), (0.39, False)])
def test_a_stretch_that_scores_worse_on_the_strips_is_dropped(movie, tmp_path, score, kept):
    """The strips are training data in the stretch, so their score can only show that it
    went wrong: more than the tolerance (0.1) below the reference (the main run's median
    validation score, 0.5) drops it; its epochs still count."""
    assert _stretch(movie, tmp_path, score) == (3, kept, not kept)


def test_a_stretch_must_beat_the_untrained_start(movie, tmp_path):
    """Within the tolerance of the main run, but not above the untrained start the main run
    beat: the user would get a model worse than one they had."""
    assert _stretch(movie, tmp_path, 0.45, beat=0.45) == (3, False, True)
    assert _stretch(movie, tmp_path, 0.46, beat=0.45) == (3, True, False)


def test_a_stretch_straight_after_the_trials_has_no_reference(movie, tmp_path):
    """Straight after the trials (reference None) a low score on the strips does not drop
    the stretch (the strips misjudge a model trained on whole frames); the untrained start
    must still be beaten."""
    assert _stretch(movie, tmp_path, 0.1, reference=None) == (3, True, False)
    assert _stretch(movie, tmp_path, 0.1, reference=None, beat=0.2) == (3, False, True)


def test_stretch_epochs_from_the_main_run_pace(movie, tmp_path, calls):
    from h4tracks.core.segmentation.training import TrainResult

    # the main run: 8 epochs in 1 s -> 1.25 s left hold 10 epochs
    main = TrainResult(tmp_path / "m.pth", 10.0, 8, step_seconds=1.0, check_seconds=0.5,
                       val_scores=[(4, 0.4), (8, 0.5)], best_score=0.5)
    assert _stretch(movie, tmp_path, 1.0, seconds=1.25, main=main)[:2] == (10, True)
    assert calls[-1][1].epochs == 10 and calls[-1][1].warmup_epochs == 2
    # 90 % of 10 epochs, capped at the 8 after the warm-up
    assert calls[-1][1].average_last == 0.9 and calls[-1][2].averaged_epochs == 8
    # less than 2 epochs' time left: no stretch at all
    calls.clear()
    assert _stretch(movie, tmp_path, 1.0, seconds=0.2, main=main)[:3] == (0, False, True)
    assert not calls  # no training started


def test_a_time_budget_after_the_trials_goes_to_the_stretch(movie, tmp_path, calls):
    r = train_recipe(list(movie.image), list(movie.labels), tmp_path / "m.pth",
                     params=RecipeParams(minutes=0.4, **TINY), cores=1)
    # the trial, then the stretch on all pixels with what is left: no main run between
    (_, trial, _), (px, stretch, _) = calls
    assert trial.minutes is not None and stretch.minutes is not None
    assert px == _curated_pixels(movie) and stretch.epochs >= 2
    assert 1 <= r.final_epochs <= stretch.epochs  # (the time may cut it short)
    assert r.seconds < 0.4 * 60 + 10


def test_a_time_budget_keeps_a_quarter_for_the_stretch_after_a_main_run(
        movie, tmp_path, calls, monkeypatch):
    """A winner below an untrained start (as in the test above) gets a main run, which ends
    a quarter of the budget (6 s) before its end; the stretch gets that quarter."""
    from h4tracks.core.segmentation.models import demo_entry

    scores = iter([0.6, 0.5])
    monkeypatch.setattr(recipe, "score_pieces", lambda *a: next(scores, 0.7))
    r = train_recipe(list(movie.image), list(movie.labels), tmp_path / "m.pth",
                     base=lambda: load_cellpose_model(demo_entry())[0],
                     params=RecipeParams(minutes=0.4, **TINY), cores=1)
    _, main, stretch = (p for _, p, _ in calls)
    assert main.minutes is not None and main.minutes * 60 < 0.4 * 60 * 0.75
    assert calls[-1][0] == _curated_pixels(movie) and stretch.epochs >= 2
    assert 1 <= r.final_epochs <= stretch.epochs
    assert r.seconds < 0.4 * 60 + 10


def test_budget_shares_leave_a_main_run():
    RecipeParams(trial_fraction=0.3, final_fraction=0.6)
    with pytest.raises(ValidationError, match="main run"):
        RecipeParams(trial_fraction=0.5, final_fraction=0.5)
