"""SamDSK rounds on tiny synthetic images (one bright disc each) with offline proposals."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from samdsk.errors import ConfigError
from samdsk.knowledge import ClassKnowledge
from samdsk.model import ModelConfig, TrainingSample, train_model
from samdsk.model.train import TrainResult
from samdsk.proposals import ProposalCache, ProposalSource, build_proposal_source
from samdsk.rounds import RoundConfig, machine_labels, run_round, run_samdsk
from samdsk.types import Proposals

SIZE = 64
MODEL = ModelConfig(
    encoder="tu-mobilenetv3_small_050",
    input_size=SIZE,
    steps=3,
    batch_size=2,
    val_every=3,
    device="cpu",
)
KNOWLEDGE = (ClassKnowledge(min_regions=1, max_regions=1, min_area=0.01, max_area=0.6),)
pytestmark = pytest.mark.usefixtures("one_torch_thread")


class CountingSource:
    """A real proposal source that counts how often it is asked to propose."""

    def __init__(self, inner: ProposalSource) -> None:
        self.inner = inner
        self.calls = 0
        self.name = inner.name

    def settings_key(self) -> str:
        return self.inner.settings_key()

    def describe(self) -> str:
        return self.inner.describe()

    def propose(self, image: np.ndarray) -> Proposals:
        self.calls += 1
        return self.inner.propose(image)


def _disc(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:SIZE, :SIZE]
    cy, cx, radius = rng.integers(20, 44), rng.integers(20, 44), rng.integers(8, 14)
    mask = (yy - cy) ** 2 + (xx - cx) ** 2 <= radius**2
    image = rng.normal(60, 12, (SIZE, SIZE, 3))
    image[mask] += 130
    return np.clip(image, 0, 255).astype(np.uint8), mask


@pytest.fixture(scope="module")
def discs() -> tuple[list[TrainingSample], list[np.ndarray]]:
    pairs = [_disc(seed) for seed in range(9)]
    labeled = [TrainingSample(image, mask) for image, mask in pairs[:4]]
    return labeled, [image for image, _ in pairs[4:]]


@pytest.fixture(scope="module")
def trained(discs: tuple[list[TrainingSample], list[np.ndarray]]) -> TrainResult:
    return train_model(discs[0], MODEL)


def _config(threshold: float, **options: object) -> RoundConfig:
    return RoundConfig(model=MODEL, knowledge=KNOWLEDGE, threshold=threshold, **options)  # type: ignore[arg-type]


def test_round_ranks_candidates_and_accepts_only_scores_above_threshold(
    discs: tuple[list[TrainingSample], list[np.ndarray]], trained: TrainResult, tmp_path: Path
) -> None:
    labeled, pool = discs
    source = CountingSource(build_proposal_source("offline"))
    cache = ProposalCache(tmp_path / "cache")
    stages: list[str] = []
    first = run_round(
        labeled,
        pool,
        source,
        cache,
        _config(0.0),
        trained=trained,
        progress=lambda stage, fraction: stages.append(f"{stage} {fraction:g}"),
    )
    assert {"predict 1", "propose 1", "match 1"} <= set(stages)
    scores = [c.score for c in first.candidates]
    assert sorted(c.index for c in first.candidates) == list(range(len(pool)))
    assert [c.rank for c in first.candidates] == list(range(len(pool)))
    assert scores == sorted(scores, reverse=True)
    assert all(0.0 <= s <= 1.0 for s in scores)
    assert first.accepted == [c.index for c in first.candidates]  # threshold 0 takes all
    assert first.seconds["train"] == 0.0 and first.seconds["match"] > 0.0
    mask = first.candidates[0].match.class_mask
    assert mask.shape == (SIZE, SIZE) and mask.dtype == np.uint8
    # A threshold halfway between two scores splits them (no score sits on it); the model is
    # the same, so are the scores.
    half = len(scores) // 2
    threshold = (scores[half - 1] + scores[half]) / 2
    second = run_round(labeled, pool, source, cache, _config(threshold), trained=trained)
    assert [c.score for c in second.candidates] == scores
    assert second.accepted == [c.index for c in second.candidates if c.score >= threshold]
    assert second.accepted == [c.index for c in first.candidates[:half]]
    # The second round read every proposal from the cache.
    assert source.calls == len(pool)


def test_rounds_add_machine_labels_reuse_the_cache_and_stop(
    discs: tuple[list[TrainingSample], list[np.ndarray]], trained: TrainResult, tmp_path: Path
) -> None:
    labeled, pool = discs
    source = CountingSource(build_proposal_source("offline"))
    cache = ProposalCache(tmp_path / "cache")
    seen: list[int] = []
    results = run_samdsk(
        labeled,
        pool,
        source,
        cache,
        _config(0.0, max_rounds=3, max_new_per_round=2),
        first_model=trained,
        on_round=lambda result: seen.append(result.number),
    )
    assert seen == [1, 2, 3]
    assert [len(r.candidates) for r in results] == [5, 3, 1]
    assert results[0].trained is trained and results[1].trained is not trained
    accepted = [i for r in results for i in r.accepted]
    assert len(accepted) == len(set(accepted)) == 5
    assert source.calls == len(pool)  # rounds 2 and 3 proposed nothing anew
    labels = machine_labels(results[0], pool, 0.5)
    assert [s.weight for s in labels] == [0.5, 0.5]
    assert all(s.machine for s in labels)  # so human_share can tell them from human labels
    assert labels[0].image is pool[results[0].accepted[0]]


def test_rounds_stop_when_a_round_adds_nothing(
    discs: tuple[list[TrainingSample], list[np.ndarray]], trained: TrainResult
) -> None:
    labeled, pool = discs
    source = CountingSource(build_proposal_source("offline"))
    results = run_samdsk(
        labeled, pool, source, None, _config(1.0, max_rounds=3), first_model=trained
    )
    assert len(results) == 1 and results[0].accepted == []
    assert source.calls == len(pool)


def test_round_config_rejects_bad_settings() -> None:
    with pytest.raises(ConfigError, match="threshold"):
        RoundConfig(model=MODEL, knowledge=KNOWLEDGE, threshold=1.5)
    with pytest.raises(ConfigError, match="one ClassKnowledge per class"):
        RoundConfig(model=MODEL, knowledge=KNOWLEDGE * 2)
    with pytest.raises(ConfigError, match="max_rounds"):
        RoundConfig(model=MODEL, knowledge=KNOWLEDGE, max_rounds=0)
    with pytest.raises(ConfigError, match="empty_labels"):
        RoundConfig(model=MODEL, knowledge=KNOWLEDGE, empty_labels="sometimes")  # type: ignore[arg-type]


def test_empty_annotations_wait_for_a_reviewer_by_default(
    discs: tuple[list[TrainingSample], list[np.ndarray]], trained: TrainResult, tmp_path: Path
) -> None:
    # The class may be absent, and no disc (5-15 % of the image) fits the area prior, so the
    # annotations are empty: ranked like any other, accepted only under an explicit policy.
    labeled, pool = discs
    absent = (ClassKnowledge(min_regions=0, max_regions=1, min_area=0.4, max_area=0.5),)
    source = build_proposal_source("offline")
    cache = ProposalCache(tmp_path / "cache")
    default_config = RoundConfig(model=MODEL, knowledge=absent, threshold=0.0)
    default = run_round(labeled, pool, source, cache, default_config, trained=trained)
    empty = [c.index for c in default.candidates if not c.match.class_mask.any()]
    assert empty and len(default.candidates) == len(pool)
    assert not set(default.accepted) & set(empty)
    anything = replace(default_config, empty_labels="any")
    taken = run_round(labeled, pool, source, cache, anything, trained=trained)
    assert set(empty) <= set(taken.accepted)
