"""Arm H: the labels C accepted, retrained with human labels held at a share of every batch,
beside C on the same A, and compared with C image by image."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from samdsk.cli import build_parser
from samdsk.errors import ConfigError
from samdsk.experiment import ExperimentConfig, ExperimentResult, run_experiment
from samdsk.experiment_outputs import write_outputs
from samdsk.knowledge import PRESETS
from samdsk.model import ModelConfig, TrainingSample
from samdsk.model.data import resize_samples
from samdsk.model.label_mix import human_share_for_mix
from samdsk.proposals import build_proposal_source
from tests.test_samdsk_experiment import TINY_MODEL, _one_round_experiment, record_trainings

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def run_recording(
    tmp_path: Path, monkeypatch: Any, **settings: Any
) -> tuple[ExperimentResult, list[tuple[list[TrainingSample], ModelConfig]]]:
    """Run A, C, H for one round; record every training's samples and model settings."""
    trainings = record_trainings(monkeypatch)
    config = _one_round_experiment(tmp_path, arms=("A", "C", "H"), **settings)
    result = run_experiment(config, build_proposal_source("offline"))
    return result, [(t.samples, t.model) for t in trainings]


def test_h_retrains_c_labels_with_the_human_share(tmp_path: Path, monkeypatch: Any) -> None:
    result, trainings = run_recording(tmp_path, monkeypatch, threshold=0.0, retrain_human_share=0.4)
    (a_samples, a_model), (c_samples, c_model), (h_samples, h_model) = trainings
    assert (a_model.human_share, c_model.human_share, h_model.human_share) == (0.0, 0.0, 0.4)
    assert h_model == ModelConfig(**{**c_model.to_dict(), "human_share": 0.4})
    # the same samples, human and machine, in the same order
    assert [s.machine for s in h_samples] == [s.machine for s in c_samples]
    for h, c in zip(h_samples, c_samples, strict=True):
        assert h.image is c.image and np.array_equal(h.mask, c.mask) and h.weight == c.weight
    assert sum(s.machine for s in h_samples) == 2 and len(a_samples) == len(c_samples) - 2

    c_rows, h_rows = result.arms["C"].rows, result.arms["H"].rows
    assert [(r.arm, r.round) for r in h_rows] == [("H", 0), ("H", 1)]
    assert h_rows[0].test_dice == result.arms["A"].rows[0].test_dice
    for field in ("machine_labels", "added", "added_label_dice", "added_mean_score", "scored"):
        assert getattr(h_rows[1], field) == getattr(c_rows[1], field)
    assert h_rows[1].train_seconds > 0

    report = write_outputs(result, tmp_path / "out")
    paired = report["paired_with_C"]["H"]
    assert paired["images"] == len(result.data.test)
    assert set(report["paired_with_A"]) == {"C", "H"}
    assert report["settings"]["retrain_human_share"] == 0.4
    assert (tmp_path / "out" / "rounds_samdsk_human_share.csv").is_file()


def test_c_under_the_mix_rule_records_its_share_and_h_keeps_the_fixed_one(
    tmp_path: Path, monkeypatch: Any
) -> None:
    trainings = record_trainings(monkeypatch)
    model = replace(TINY_MODEL, mix_human_share=0.5)
    config = _one_round_experiment(tmp_path, arms=("A", "C", "H"), threshold=0.0, model=model)
    result = run_experiment(config, build_proposal_source("offline"))
    _, c_training, h_training = trainings
    assert c_training.model.mix_human_share == 0.5
    assert (h_training.model.human_share, h_training.model.mix_human_share) == (0.5, 0.0)
    trained_on = resize_samples(c_training.samples, model.input_size, num_classes=1)
    chosen, _ = human_share_for_mix(trained_on.masks, trained_on.machine, 0.5)
    c_row, h_row = result.arms["C"].rows[1], result.arms["H"].rows[1]
    assert c_row.human_share == c_training.result.config.human_share == chosen
    assert h_row.human_share == 0.5
    write_outputs(result, tmp_path / "out")
    with (tmp_path / "out" / "rounds_samdsk.csv").open() as handle:
        header, _, row = handle.read().splitlines()
    assert header.split(",")[-1] == "human_share"
    assert float(row.split(",")[-1]) == chosen


def test_h_is_a_when_c_accepts_nothing(tmp_path: Path, monkeypatch: Any) -> None:
    result, trainings = run_recording(tmp_path, monkeypatch, threshold=1.0)
    assert len(trainings) == 1  # A only: nothing to retrain
    (row,) = result.arms["H"].rows
    assert (row.arm, row.test_dice) == ("H", result.arms["A"].rows[0].test_dice)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"arms": ("A", "H")}, "include C"),
        ({"arms": ("A", "C", "H"), "retrain_human_share": 1.0}, r"in \(0, 1\)"),
        ({"arms": ("A", "C"), "retrain_human_share": 0.0}, r"in \(0, 1\)"),
        ({"arms": ("A", "C", "H"), "model": {"human_share": 0.5}}, "would repeat"),
        ({"arms": ("A", "C", "H"), "model": {"keep_empty_share": True}}, "keep_empty_share"),
    ],
)
def test_bad_h_settings_are_refused(settings: dict[str, Any], message: str, tmp_path: Path) -> None:
    model = replace(TINY_MODEL, **settings.pop("model", {}))
    with pytest.raises(ConfigError, match=message):
        ExperimentConfig(data=tmp_path, model=model, knowledge=PRESETS["ph2"], **settings)


def test_command_line() -> None:
    parser = build_parser()
    args = parser.parse_args(
        [
            "experiment",
            "--data",
            "d",
            "--out",
            "o",
            "--arms",
            "a,c,h",
            "--retrain-human-share",
            "0.3",
        ]
    )
    assert (args.arms, args.retrain_human_share) == (("A", "C", "H"), 0.3)
    assert parser.parse_args(["experiment", "--data", "d", "--out", "o"]).retrain_human_share == 0.5
    with pytest.raises(SystemExit):
        parser.parse_args(["experiment", "--data", "d", "--out", "o", "--retrain-human-share", "1"])
