"""Peer maps: round 1 matching against the mean of several models' probability maps
(``ensemble_maps``, ``run_round(peers=...)``, the experiment's ``peer_maps``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import samdsk.augment_choice
import samdsk.rounds
from samdsk.augment_choice import AUTO_AUGMENT_CHOICES
from samdsk.cli import build_parser
from samdsk.errors import ConfigError
from samdsk.experiment import run_experiment
from samdsk.experiment_outputs import write_outputs
from samdsk.model import TrainingSample, train_model
from samdsk.model.train import TrainResult
from samdsk.proposals import build_proposal_source
from samdsk.rounds import (
    RoundConfig,
    construct_annotation,
    ensemble_maps,
    predict_in_batches,
    run_round,
    run_samdsk,
)
from tests.test_samdsk_experiment import _tiny_experiment, _write_folder
from tests.test_samdsk_rounds import KNOWLEDGE, MODEL, _disc

Discs = tuple[list[TrainingSample], list[np.ndarray]]
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def discs() -> Discs:
    pairs = [_disc(seed) for seed in range(20, 28)]
    return [TrainingSample(image, mask) for image, mask in pairs[:4]], [i for i, _ in pairs[4:]]


@pytest.fixture(scope="module")
def sure(discs: Discs) -> TrainResult:
    """A model that has learnt the discs."""
    return train_model(discs[0], replace(MODEL, steps=40, val_every=40))


@pytest.fixture(scope="module")
def blind(discs: Discs) -> TrainResult:
    """A model trained to see nothing on the same images: it disagrees with ``sure``."""
    empty = [TrainingSample(s.image, np.zeros_like(s.mask)) for s in discs[0]]
    return train_model(empty, replace(MODEL, steps=40, val_every=40, seed=1))


def test_the_ensemble_map_is_the_mean_of_each_models_map(
    discs: Discs, sure: TrainResult, blind: TrainResult
) -> None:
    pool = discs[1]
    own = predict_in_batches(sure, pool, flip_tta=True)
    other = predict_in_batches(blind, pool, flip_tta=True)
    alone = ensemble_maps([sure], pool, flip_tta=True)
    assert all(np.array_equal(a, b) for a, b in zip(alone, own, strict=True))
    fractions: list[float] = []
    mean = ensemble_maps([sure, blind], pool, lambda _stage, f: fractions.append(f), flip_tta=True)
    for got, first, second in zip(mean, own, other, strict=True):
        assert got.dtype == np.float32 and got.shape == first.shape
        np.testing.assert_allclose(got, (first + second) / 2, atol=1e-6)
    assert fractions == sorted(fractions) and fractions[-1] == pytest.approx(1.0)
    assert fractions[len(fractions) // 2 - 1] == pytest.approx(0.5)  # first model done
    with pytest.raises(ConfigError, match="at least one model"):
        ensemble_maps([], pool)


def test_a_peer_that_sees_nothing_lowers_every_match_score(
    discs: Discs, sure: TrainResult, blind: TrainResult
) -> None:
    labeled, pool = discs
    source = build_proposal_source("offline")
    config = RoundConfig(model=MODEL, knowledge=KNOWLEDGE, threshold=0.0)
    alone = run_round(labeled, pool, source, None, config, trained=sure)
    agreeing = run_round(labeled, pool, source, None, config, trained=sure, peers=[sure])
    scores = {c.index: c.score for c in alone.candidates}
    assert {c.index: c.score for c in agreeing.candidates} == pytest.approx(scores)
    # at the lowest score of the model alone every image is accepted without the peer
    lowest = replace(config, threshold=min(scores.values()))
    doubted = run_round(labeled, pool, source, None, lowest, trained=sure, peers=[blind])
    for candidate in doubted.candidates:
        assert candidate.score < scores[candidate.index]
    assert doubted.accepted == []
    # the score is the match against the mean map, nothing else
    mean = ensemble_maps([sure, blind], pool, flip_tta=True)
    best = doubted.candidates[0]
    rebuilt = construct_annotation(source.propose(pool[best.index]), mean[best.index], config)
    assert rebuilt.score == pytest.approx(best.score)
    assert np.array_equal(rebuilt.class_mask, best.match.class_mask)


def test_only_round_one_has_peers(
    discs: Discs, sure: TrainResult, blind: TrainResult, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[int] = []
    real = samdsk.rounds.ensemble_maps

    def counting(models: Sequence[TrainResult], *args: Any, **options: Any) -> list[np.ndarray]:
        seen.append(len(models))
        return real(models, *args, **options)

    monkeypatch.setattr(samdsk.rounds, "ensemble_maps", counting)
    config = RoundConfig(
        model=MODEL, knowledge=KNOWLEDGE, threshold=0.0, max_rounds=2, max_new_per_round=2
    )
    results = run_samdsk(
        discs[0],
        discs[1],
        build_proposal_source("offline"),
        None,
        config,
        first_model=sure,
        first_peers=[blind],
    )
    assert len(results) == 2 and seen == [2, 1]


def test_peer_maps_need_a_perturbation_choice(tmp_path: Path) -> None:
    data = _write_folder(tmp_path / "data", 6)
    with pytest.raises(ConfigError, match="machine_augment='auto'"):
        _tiny_experiment(data, peer_maps=True)
    _tiny_experiment(data, peer_maps=True, augment_choices=AUTO_AUGMENT_CHOICES)
    args = build_parser().parse_args(["experiment", "--data", "d", "--out", "o", "--peer-maps"])
    assert args.peer_maps is True


def record_ensembles(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """From now on, the policies of the models behind every ensemble map, one list per call."""
    seen: list[list[str]] = []
    real = samdsk.rounds.ensemble_maps

    def recording(models: Sequence[TrainResult], *args: Any, **options: Any) -> list[np.ndarray]:
        seen.append([m.config.machine_augment for m in models])
        return real(models, *args, **options)

    monkeypatch.setattr(samdsk.rounds, "ensemble_maps", recording)
    return seen


@pytest.mark.parametrize("peer_maps", [True, False])
def test_the_experiment_matches_against_the_policy_not_chosen_too(
    peer_maps: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = record_ensembles(monkeypatch)
    monkeypatch.setattr(samdsk.augment_choice, "choose_augment", lambda _: "strong_all")
    config = _tiny_experiment(
        _write_folder(tmp_path / "data", 12),
        labeled_fraction=0.4,
        rounds=1,
        size=48,
        arms=("A", "C"),
        augment_choices=AUTO_AUGMENT_CHOICES,
        peer_maps=peer_maps,
    )
    report = write_outputs(run_experiment(config, build_proposal_source("offline")), tmp_path)
    assert seen == ([["strong_all", "same"]] if peer_maps else [["strong_all"]])
    assert report["settings"]["peer_maps"] is peer_maps


def test_arm_p_is_c_with_peer_maps_beside_c_on_the_same_a(tmp_path: Path) -> None:
    data = _write_folder(tmp_path / "data", 12)
    settings: dict[str, Any] = {
        "labeled_fraction": 0.4,
        "rounds": 1,
        "size": 48,
        "augment_choices": AUTO_AUGMENT_CHOICES,
        "threshold": 0.0,  # the tiny models' labels are poor: take the best two anyway
        "max_new_per_round": 2,
    }
    source = build_proposal_source("offline")
    both = write_outputs(
        run_experiment(_tiny_experiment(data, arms=("A", "C", "P"), **settings), source),
        tmp_path / "both",
    )
    alone = write_outputs(
        run_experiment(_tiny_experiment(data, arms=("A", "C"), peer_maps=True, **settings), source),
        tmp_path / "alone",
    )

    def timeless(arm: dict[str, Any], name: str) -> list[dict[str, Any]]:
        return [{**row, "arm": name, "train_seconds": None} for row in arm["rounds"]]

    # P is exactly what C is under peer_maps, on the same A, and C beside it is C without them
    assert timeless(both["arms"]["P"], "P") == timeless(alone["arms"]["C"], "P")
    assert both["arms"]["P"]["rounds"][1]["added"] == 2  # a round that trained again
    assert timeless(both["arms"]["A"], "A") == timeless(alone["arms"]["A"], "A")
    assert both["samdsk_peer_maps_rounds"][0]["match_scores"] == pytest.approx(
        alone["samdsk_rounds"][0]["match_scores"], abs=1e-9
    )
    assert (
        both["samdsk_rounds"][0]["match_scores"]
        != both["samdsk_peer_maps_rounds"][0]["match_scores"]
    )
    assert both["arms"]["P"]["name"] == "samdsk_peer_maps"
    assert set(both["paired_with_A"]) == {"C", "P"}
    for name in ("match_scores_peer_maps.png", "accepted_labels_peer_maps.png"):
        assert (tmp_path / "both" / name).is_file()
    assert (tmp_path / "both" / "rounds_samdsk_peer_maps.csv").is_file()
    with pytest.raises(ConfigError, match="arm P"):
        _tiny_experiment(data, arms=("A", "P"), **{**settings, "augment_choices": ()})
    with pytest.raises(ConfigError, match="C is arm P"):
        _tiny_experiment(data, arms=("A", "C", "P"), peer_maps=True, **settings)
    args = build_parser().parse_args(["experiment", "--data", "d", "--out", "o", "--arms", "p,a,c"])
    assert args.arms == ("A", "C", "P")
