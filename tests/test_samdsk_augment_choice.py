"""Choosing the perturbation policy on the validation labels (``--machine-augment auto``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

import samdsk.experiment
from samdsk.augment_choice import AUTO_AUGMENT_CHOICES, check_augment_choices, choose_augment
from samdsk.cli import build_parser, model_config
from samdsk.errors import ConfigError
from samdsk.experiment import run_experiment, write_outputs
from samdsk.model import ModelConfig, TrainingSample
from samdsk.model.train import TrainResult, train_model
from samdsk.proposals import build_proposal_source
from tests.test_samdsk_experiment import _tiny_experiment, _write_folder


@pytest.mark.parametrize(
    ("val_dice", "chosen"),
    [
        ({"same": 0.58, "strong_all": 0.46}, "same"),
        ({"same": 0.88, "strong_all": 0.90}, "strong_all"),
        ({"same": 0.9, "strong_all": 0.9}, "same"),  # a tie keeps the default
        ({"strong_all": 0.9, "same": 0.9}, "strong_all"),  # ... the first given
        ({"same": None, "strong_all": None}, "same"),  # nothing validated: the default
        ({"same": None, "strong_all": 0.1}, "strong_all"),
    ],
)
def test_the_best_validated_policy_is_chosen_and_ties_keep_the_first(
    val_dice: dict[str, float | None], chosen: str
) -> None:
    assert choose_augment(val_dice) == chosen


@pytest.mark.parametrize(
    ("choices", "message"),
    [
        (("same", "hue"), "some of"),
        (("same", "same"), "distinct"),
        (("strong_all",), "two or more"),
        (("same", "strong"), "machine labels only"),
    ],
)
def test_choices_the_supervised_model_cannot_tell_apart_are_refused(
    choices: tuple[str, ...], message: str, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError, match=message):
        check_augment_choices(choices)
    with pytest.raises(ConfigError, match=message):
        _tiny_experiment(tmp_path, augment_choices=choices)
    check_augment_choices(())  # no choice: the policy given is used
    with pytest.raises(ConfigError, match="no candidate"):
        choose_augment({})


def test_auto_is_an_experiment_option_and_starts_from_the_default() -> None:
    parser = build_parser()
    auto = ["--machine-augment", "auto"]
    args = parser.parse_args(["experiment", "--data", "d", "--out", "o", *auto])
    assert args.machine_augment == "auto" and model_config(args).machine_augment == "same"
    with pytest.raises(SystemExit):  # 'train' trains one model: there is nothing to choose by
        parser.parse_args(["train", "--data", "d", "--out", "o", *auto])


def _recording_training(calls: list[str]) -> Any:
    """train_model, noting the policy each training ran under."""

    def train(
        samples: Sequence[TrainingSample], config: ModelConfig, **options: Any
    ) -> TrainResult:
        calls.append(config.machine_augment)
        return train_model(samples, config, **options)

    return train


@pytest.mark.parametrize("forced", ["same", "strong_all"])
def test_every_arm_trains_under_the_chosen_policy_and_the_report_says_so(
    forced: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    monkeypatch.setattr(samdsk.experiment, "train_model", _recording_training(calls))
    seen: list[dict[str, float | None]] = []

    def choose(val_dice: dict[str, float | None]) -> str:
        seen.append(dict(val_dice))
        return forced

    monkeypatch.setattr(samdsk.experiment, "choose_augment", choose)
    config = _tiny_experiment(
        _write_folder(tmp_path / "data", 14),
        labeled_fraction=0.4,
        rounds=1,
        size=48,
        threshold=0.0,  # accept every candidate, so C trains a second model
        arms=("A", "C", "D"),
        augment_choices=AUTO_AUGMENT_CHOICES,
    )
    lines: list[str] = []
    result = run_experiment(config, build_proposal_source("offline"), log=lines.append)
    report = write_outputs(result, tmp_path / "out")

    assert calls == ["same", "strong_all", forced, forced]  # A twice, C's round 1, D
    choice = report["augment_choice"]
    assert choice["chosen"] == forced and [choice["val_dice"]] == seen
    assert list(choice["test_dice"]) == ["same", "strong_all"]
    assert report["arms"]["A"]["rounds"][0]["val_dice"] == choice["val_dice"][forced]
    assert report["arms"]["A"]["final_test_dice"] == pytest.approx(choice["test_dice"][forced])
    assert report["settings"]["model"]["machine_augment"] == forced
    assert report["settings"]["augment_choices"] == ["same", "strong_all"]
    assert report["arms"]["C"]["rounds"][1]["added"] > 0
    said = (
        f"perturbation chosen on {len(report['split']['validation'])} validation images: {forced}"
    )
    assert any(line.startswith(said) for line in lines)


def test_without_a_choice_the_report_records_none(tmp_path: Path) -> None:
    config = _tiny_experiment(
        _write_folder(tmp_path / "data", 10), labeled_fraction=0.3, rounds=1, size=48, arms=("A",)
    )
    report = write_outputs(run_experiment(config, build_proposal_source("offline")), tmp_path)
    assert report["augment_choice"] is None and report["settings"]["augment_choices"] == []
