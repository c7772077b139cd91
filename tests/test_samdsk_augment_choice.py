"""Choosing the perturbation policy on the validation labels (``machine_augment="auto"``,
``--machine-augment auto``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

import samdsk.augment_choice
import samdsk.experiment
from samdsk.augment_choice import (
    AUTO_AUGMENT_CHOICES,
    check_augment_choices,
    choose_augment,
    train_choosing_augment,
)
from samdsk.cli import build_parser, main, model_config
from samdsk.errors import ConfigError
from samdsk.experiment import run_experiment
from samdsk.experiment_outputs import write_outputs
from samdsk.model import ModelConfig, TrainingSample, load_checkpoint
from samdsk.model.train import TrainResult, train_model
from samdsk.proposals import build_proposal_source
from tests.test_samdsk_experiment import _tiny_experiment, _write_folder
from tests.test_samdsk_model import disc_samples


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


def test_auto_is_an_option_of_every_command_that_trains() -> None:
    parser = build_parser()
    auto = ["--machine-augment", "auto"]
    for command in ("experiment", "train"):
        args = parser.parse_args([command, "--data", "d", "--out", "o", *auto])
        assert model_config(args).machine_augment == "auto"
    with pytest.raises(SystemExit):
        parser.parse_args(["train", "--data", "d", "--out", "o", "--machine-augment", "any"])


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
    recording = _recording_training(calls)
    monkeypatch.setattr(samdsk.experiment, "train_model", recording)  # C and D
    monkeypatch.setattr(samdsk.augment_choice, "train_model", recording)  # A, once per policy
    seen: list[dict[str, float | None]] = []

    def choose(val_dice: dict[str, float | None]) -> str:
        seen.append(dict(val_dice))
        return forced

    monkeypatch.setattr(samdsk.augment_choice, "choose_augment", choose)
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


TINY = ModelConfig(encoder="tu-test_resnet", input_size=64, batch_size=4, steps=3, val_every=20)


def test_auto_is_a_setting_that_train_model_alone_refuses() -> None:
    auto = ModelConfig.from_dict({"machine_augment": "auto"})
    assert auto.machine_augment == "auto"
    with pytest.raises(ConfigError, match="train_choosing_augment"):
        train_model(disc_samples(4, 64, 0), replace(TINY, machine_augment="auto"))


def test_training_under_each_policy_keeps_the_better_validated_model() -> None:
    steps: list[tuple[int, int]] = []
    lines: list[str] = []
    chosen = train_choosing_augment(
        disc_samples(6, 64, 0),
        replace(TINY, machine_augment="auto"),
        val=disc_samples(3, 64, 1),
        progress=lambda step, total, _loss: steps.append((step, total)),
        log=lines.append,
    )
    assert list(chosen.trained) == ["same", "strong_all"]
    assert [r.config.machine_augment for r in chosen.trained.values()] == ["same", "strong_all"]
    val_dice = {p: r.best_val_dice for p, r in chosen.trained.items()}
    assert chosen.choice.val_dice == val_dice and chosen.choice.chosen == choose_augment(val_dice)
    assert chosen.result is chosen.trained[chosen.choice.chosen]
    assert chosen.result.config.machine_augment == chosen.choice.chosen  # never "auto"
    # one progress scale over both trainings: 1..6 of 6, never going back
    assert steps == [(step, 6) for step in range(1, 7)]
    said = f"perturbation chosen on 3 validation images: {chosen.choice.chosen} ("
    assert lines[-1].startswith(said)


def test_without_validation_images_only_the_default_is_trained() -> None:
    lines: list[str] = []
    chosen = train_choosing_augment(disc_samples(4, 64, 0), TINY, log=lines.append)
    assert list(chosen.trained) == ["same"] and chosen.choice.chosen == "same"
    assert chosen.choice.val_dice == {"same": None}
    assert lines[-1] == "no validation images: same kept without trying ['strong_all']"
    with pytest.raises(ConfigError, match="distinct"):
        train_choosing_augment(disc_samples(4, 64, 0), TINY, choices=("same", "same"))


def test_an_auto_model_setting_makes_the_experiment_choose(tmp_path: Path) -> None:
    data = _write_folder(tmp_path / "data", 6)
    plain = _tiny_experiment(data)
    assert plain.augment_choices == ()
    auto = replace(plain, model=replace(plain.model, machine_augment="auto"))
    assert auto.augment_choices == AUTO_AUGMENT_CHOICES


def test_train_command_with_auto_saves_the_chosen_policy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _write_folder(tmp_path / "data", 12)
    checkpoint = tmp_path / "model.pt"
    options = ["--encoder", "tu-test_resnet", "--size", "64", "--steps", "2", "--batch-size", "2"]
    argv = ["train", "--data", str(data), "--out", str(checkpoint), "--machine-augment", "auto"]
    assert main([*argv, *options]) == 0
    out = capsys.readouterr().out
    assert "training under machine_augment=same (1 of 2)" in out
    assert "training under machine_augment=strong_all (2 of 2)" in out
    said = next(line for line in out.splitlines() if line.startswith("perturbation chosen on"))
    _, config = load_checkpoint(checkpoint)
    assert said.split(": ")[1].startswith(config.machine_augment)
    assert config.machine_augment in AUTO_AUGMENT_CHOICES
