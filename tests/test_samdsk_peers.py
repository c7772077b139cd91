"""Screening peers on the validation images (``samdsk.peers``) and the experiment's use of it:
a peer the validation images show worse than the chosen model stays out of the maps."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from samdsk.augment_choice import AUTO_AUGMENT_CHOICES
from samdsk.cli import build_parser
from samdsk.experiment import run_experiment
from samdsk.experiment_supervised import load_supervised, supervised_fingerprint
from samdsk.model import TrainingSample, train_model
from samdsk.model.train import TrainResult
from samdsk.peers import (
    MIN_IMAGES_TO_SCREEN,
    per_image_validation_dice,
    screen_peer,
    screen_peers,
)
from samdsk.proposals import build_proposal_source
from tests.test_samdsk_experiment import _tiny_experiment, _write_folder
from tests.test_samdsk_peer_maps import record_ensembles
from tests.test_samdsk_rounds import MODEL, _disc

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_the_bound_is_the_one_sided_student_t_bound_of_the_paired_differences() -> None:
    chosen = np.array([0.8, 0.9, 0.7])
    peer = chosen - np.array([0.1, 0.2, 0.3])  # differences -0.1, -0.2, -0.3
    screen = screen_peer("strong_all", chosen, peer)
    # mean -0.2, sample sd 0.1, t(0.95, 2 df) = 2.919986
    expected = -0.2 + 2.919986 * 0.1 / np.sqrt(3)
    assert screen.mean_difference == pytest.approx(-0.2)
    assert screen.upper_bound == pytest.approx(expected, abs=1e-6)
    assert expected < 0 and not screen.kept
    assert screen.to_dict() == {
        "policy": "strong_all",
        "kept": False,
        "images": 3,
        "mean_difference": screen.mean_difference,
        "upper_bound": screen.upper_bound,
    }
    assert "left out" in screen.describe() and "strong_all" in screen.describe()


def test_a_peer_level_with_the_chosen_model_or_better_is_kept() -> None:
    chosen = np.linspace(0.5, 0.9, 14)
    assert screen_peer("same", chosen, chosen.copy()).kept  # identical: bound 0
    assert screen_peer("same", chosen, np.minimum(chosen + 0.05, 1.0)).kept
    # 4 points worse on average but up and down from image to image: not shown worse
    swings = np.where(np.arange(14) % 2 == 0, 0.25, -0.33)
    doubtful = screen_peer("same", chosen, np.clip(chosen + swings, 0.0, 1.0))
    assert doubtful.mean_difference is not None and doubtful.mean_difference < 0
    assert doubtful.kept and "kept" in doubtful.describe()


def test_too_few_validation_images_keep_the_peer_without_a_bound() -> None:
    chosen = np.array([0.9, 0.9])
    screen = screen_peer("same", chosen, np.array([0.1, 0.1]))
    assert screen.kept and screen.images == 2 == MIN_IMAGES_TO_SCREEN - 1
    assert screen.mean_difference is None and screen.upper_bound is None
    assert "cannot show it worse" in screen.describe()
    with pytest.raises(ValueError, match="same images"):
        screen_peer("same", np.zeros(3), np.zeros(4))


@settings(max_examples=60, deadline=None)
@given(
    chosen=st.lists(st.floats(0.0, 1.0), min_size=3, max_size=20),
    noise=st.lists(st.floats(-0.3, 0.3), min_size=20, max_size=20),
    shift=st.floats(0.0, 0.5),
)
def test_lowering_a_peer_never_lets_it_back_in(
    chosen: list[float], noise: list[float], shift: float
) -> None:
    first = np.array(chosen)
    peer = first + np.array(noise[: len(chosen)])
    before = screen_peer("p", first, peer)
    after = screen_peer("p", first, peer - shift)
    assert before.upper_bound is not None and after.upper_bound is not None
    assert after.upper_bound == pytest.approx(before.upper_bound - shift, abs=1e-9)
    if not before.kept:
        assert not after.kept
    differences = peer - first
    if np.ptp(differences) > 1e-6 and abs(before.upper_bound) > 1e-9:
        # a one-sided one-sample t-test of the differences agrees with the bound
        test = stats.ttest_1samp(differences, 0.0, alternative="less")
        assert (test.pvalue < 0.05) == (not before.kept)


Discs = tuple[list[TrainingSample], list[TrainingSample]]


@pytest.fixture(scope="module")
def discs() -> Discs:
    pairs = [_disc(seed) for seed in range(40, 50)]
    samples = [TrainingSample(image, mask) for image, mask in pairs]
    return samples[:5], samples[5:]


@pytest.fixture(scope="module")
def sure(discs: Discs) -> TrainResult:
    return train_model(discs[0], replace(MODEL, steps=40, val_every=40), val=discs[1])


@pytest.fixture(scope="module")
def blind(discs: Discs) -> TrainResult:
    """Trained to see nothing: every validation disc is missed."""
    empty = [TrainingSample(s.image, np.zeros_like(s.mask)) for s in discs[0]]
    return train_model(empty, replace(MODEL, steps=40, val_every=40, seed=1), val=discs[1])


def test_per_image_dice_averages_to_the_validation_dice_training_kept(
    discs: Discs, sure: TrainResult
) -> None:
    per_image = per_image_validation_dice(sure, discs[1])
    assert per_image.shape == (len(discs[1]),)
    assert sure.best_val_dice is not None
    assert float(per_image.mean()) == pytest.approx(sure.best_val_dice, abs=1e-6)


def test_a_model_blind_to_the_discs_is_left_out_and_an_equal_one_kept(
    discs: Discs, sure: TrainResult, blind: TrainResult
) -> None:
    val = discs[1]
    kept, screens = screen_peers(sure, {"strong_all": blind, "same": sure}, val)
    assert [s.policy for s in screens] == ["strong_all", "same"]
    assert [s.kept for s in screens] == [False, True]
    assert kept == {"same": sure}
    assert screens[0].images == len(val) and screens[0].upper_bound is not None
    assert screens[0].upper_bound < 0
    # two validation images cannot show it worse: the peer stays
    few, verdicts = screen_peers(sure, {"strong_all": blind}, val[:2])
    assert few == {"strong_all": blind} and verdicts[0].upper_bound is None
    assert screen_peers(sure, {}, val) == ({}, [])


@pytest.mark.parametrize("screen", [True, False])
def test_the_experiment_matches_only_against_the_peers_it_keeps(
    screen: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = record_ensembles(monkeypatch)
    kept_at = tmp_path / "supervised"
    config = _tiny_experiment(
        _write_folder(tmp_path / "data", 30),
        labeled_fraction=0.8,
        rounds=1,
        size=48,
        arms=("A", "C"),
        augment_choices=AUTO_AUGMENT_CHOICES,
        peer_maps=True,
        screen_peers=screen,
        keep_supervised=kept_at,
    )
    result = run_experiment(config, build_proposal_source("offline"))
    report = result.report()
    chosen = result.config.model.machine_augment
    (peer,) = [p for p in AUTO_AUGMENT_CHOICES if p != chosen]
    if not screen:
        assert report["peer_screen"] == [] and seen == [[chosen, peer]]
        return
    (verdict,) = report["peer_screen"]
    val = [TrainingSample(s.image, s.mask) for s in result.data.validation]
    assert verdict["policy"] == peer and verdict["images"] == len(val) >= MIN_IMAGES_TO_SCREEN
    # the verdict is the one the kept models give on the validation images
    fingerprint = supervised_fingerprint(
        config.data,
        result.data.split,
        config.model,
        size=config.size,
        augment_choices=config.augment_choices,
    )
    models = load_supervised(kept_at, fingerprint, "cpu")
    again = screen_peer(
        peer,
        per_image_validation_dice(models[chosen], val),
        per_image_validation_dice(models[peer], val),
    )
    assert verdict == again.to_dict()
    assert seen == [[chosen, peer] if verdict["kept"] else [chosen]]


def test_the_cli_screens_peers_unless_told_not_to() -> None:
    parser = build_parser()
    base = ["experiment", "--data", "d", "--out", "o", "--peer-maps"]
    assert parser.parse_args(base).screen_peers is True
    assert parser.parse_args([*base, "--no-screen-peers"]).screen_peers is False
