"""The human share chosen from the labels' size mix (``ModelConfig.mix_human_share``)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from samdsk.cli import build_parser, model_config
from samdsk.errors import ConfigError
from samdsk.model import train as train_module
from samdsk.model.config import ModelConfig, TrainingSample
from samdsk.model.data import TrainingBatches
from samdsk.model.label_mix import MIX_TOLERANCE, human_share_for_mix, mix_departure, size_mix
from samdsk.model.train import train_model


def square_masks(*shares: float, side: int = 100) -> np.ndarray:
    """One side x side mask per share, whose foreground covers that share of the image."""
    masks = np.zeros((len(shares), side, side), np.uint8)
    for mask, share in zip(masks, shares, strict=True):
        mask.reshape(-1)[: round(share * side * side)] = 1
    return masks


def test_size_mix_counts_empty_small_medium_and_large_masks() -> None:
    masks = square_masks(0.0, 0.01, 0.1, 0.5)
    assert size_mix(masks).tolist() == [0.25, 0.25, 0.25, 0.25]
    # A band's lower edge belongs to it: 5 % is medium, 20 % is large.
    assert size_mix(square_masks(0.05, 0.2)).tolist() == [0.0, 0.0, 0.5, 0.5]
    assert size_mix(np.zeros((0, 4, 4), np.uint8)).tolist() == [0.0] * 4
    with pytest.raises(ValueError, match="N x H x W"):
        size_mix(np.zeros((4, 4), np.uint8))


def test_departure_is_the_share_of_labels_in_another_band() -> None:
    same = square_masks(0.1, 0.3)
    assert mix_departure(same, square_masks(0.15, 0.4, 0.12, 0.25)) == 0.0
    assert mix_departure(square_masks(0.0, 0.0), square_masks(0.1, 0.3)) == 1.0
    # Half the human labels empty, none of the machine ones (BUSI): half must change band.
    busi_human = square_masks(0.0, 0.0, 0.03, 0.1)
    assert mix_departure(busi_human, square_masks(0.03, 0.1, 0.03, 0.1)) == pytest.approx(0.5)
    assert mix_departure(same, np.zeros((0, 100, 100), np.uint8)) == 0.0


def test_share_only_where_the_mix_departs_beyond_the_tolerance() -> None:
    human = square_masks(0.0, 0.0, 0.03, 0.1)
    departing = np.concatenate([human, square_masks(0.03, 0.1, 0.04, 0.08)])
    machine = np.array([False] * 4 + [True] * 4)
    assert human_share_for_mix(departing, machine, 0.5) == (0.5, pytest.approx(0.5))
    alike = np.concatenate([human, square_masks(0.0, 0.0, 0.02, 0.15)])
    assert human_share_for_mix(alike, machine, 0.5) == (0.0, 0.0)
    # Exactly at the tolerance is not beyond it.
    share, departure = human_share_for_mix(departing, machine, 0.5, tolerance=0.5)
    assert (share, departure) == (0.0, pytest.approx(0.5))
    assert 0.25 < MIX_TOLERANCE < 0.4  # between Kvasir-SEG's 0.22-0.25 and BUSI's 0.40-0.72
    assert human_share_for_mix(human, np.zeros(4, bool), 0.5) == (0.0, 0.0)


@pytest.mark.parametrize(
    "settings",
    [
        {"mix_human_share": 0.5, "human_share": 0.5},
        {"mix_human_share": 0.5, "keep_empty_share": True},
    ],
)
def test_the_mix_rule_joins_no_other_share(settings: dict[str, object]) -> None:
    with pytest.raises(ConfigError, match="mix_human_share"):
        ModelConfig(**settings)  # type: ignore[arg-type]


@pytest.mark.parametrize("share", [-0.1, 1.0, float("nan")])
def test_bad_mix_shares_are_refused(share: float) -> None:
    with pytest.raises(ConfigError, match="mix_human_share"):
        ModelConfig(mix_human_share=share)


def labelled(masks: np.ndarray, machine: bool) -> list[TrainingSample]:
    rng = np.random.default_rng(len(masks))
    return [
        TrainingSample(rng.integers(0, 256, (*m.shape, 3), dtype=np.uint8), m > 0, machine=machine)
        for m in masks
    ]


@pytest.mark.parametrize(
    ("machine_shares", "expected"),
    [((0.03, 0.1, 0.04, 0.08), 0.5), ((0.0, 0.0, 0.02, 0.15), 0.0)],
)
def test_training_takes_the_share_its_labels_call_for_and_records_it(
    monkeypatch: pytest.MonkeyPatch, machine_shares: tuple[float, ...], expected: float
) -> None:
    shares_used: list[float] = []

    class RecordingBatches(TrainingBatches):
        def __init__(self, *args: object, human_share: float = 0.0, **kwargs: object) -> None:
            shares_used.append(human_share)
            super().__init__(*args, human_share=human_share, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(train_module, "TrainingBatches", RecordingBatches)
    human = labelled(square_masks(0.0, 0.0, 0.03, 0.1, side=32), machine=False)
    machine = labelled(square_masks(*machine_shares, side=32), machine=True)
    config = ModelConfig(
        encoder="tu-test_resnet", input_size=32, batch_size=4, steps=2, mix_human_share=0.5
    )
    result = train_model(human + machine, config)
    assert shares_used == [expected]
    assert result.config.human_share == expected and result.config.mix_human_share == 0.0
    # Without the rule nothing changes: the configured share is used as it is.
    shares_used.clear()
    without_rule = replace(config, mix_human_share=0.0)
    assert train_model(human + machine, without_rule).config == without_rule
    assert shares_used == [0.0]


def test_command_line_sets_the_mix_rule() -> None:
    parser = build_parser()
    base = ["experiment", "--data", "d", "--out", "o"]
    assert model_config(parser.parse_args(base)).mix_human_share == 0.0
    args = parser.parse_args([*base, "--mix-human-share", "0.5"])
    assert model_config(args).mix_human_share == 0.5
    with pytest.raises(SystemExit):
        parser.parse_args([*base, "--mix-human-share", "1"])
