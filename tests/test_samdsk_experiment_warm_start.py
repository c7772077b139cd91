"""Warm start in the experiment: B's and C's retraining continues from the model that chose
the labels, and the setting reaches the report and the command line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from samdsk.cli import build_parser
from samdsk.experiment import run_experiment
from samdsk.model.train import TrainResult
from samdsk.proposals import build_proposal_source
from tests.test_samdsk_experiment import _one_round_experiment, record_trainings


def run_recording_starts(
    tmp_path: Path, monkeypatch: Any, warm_start: bool
) -> tuple[list[dict[str, torch.Tensor] | None], list[TrainResult]]:
    """Run A, B, C for one round; record the start weights of every training and its model."""
    trainings = record_trainings(monkeypatch)
    config = _one_round_experiment(
        tmp_path,
        arms=("A", "B", "C"),
        threshold=0.0,  # the tiny model's labels are poor: take the best two anyway
        warm_start=warm_start,
    )
    result = run_experiment(config, build_proposal_source("offline"))
    assert [row.added for row in result.arms["C"].rows] == [0, 2]
    assert result.config.warm_start is warm_start
    return [t.start for t in trainings], [t.result for t in trainings]


def test_retraining_starts_from_the_supervised_model(tmp_path: Path, monkeypatch: Any) -> None:
    starts, models = run_recording_starts(tmp_path, monkeypatch, warm_start=True)
    # A from scratch, then C's and B's retraining, each from A's weights
    assert len(starts) == 3 and starts[0] is None
    a_weights = models[0].model.state_dict()
    for start in starts[1:]:
        assert start is not None and start.keys() == a_weights.keys()
        assert all(torch.equal(start[k], a_weights[k]) for k in a_weights)
    # and the retrained models moved on from there without changing A's
    assert not torch.equal(
        models[1].model.state_dict()["segmentation_head.0.weight"],
        a_weights["segmentation_head.0.weight"],
    )


def test_without_it_every_training_starts_from_scratch(tmp_path: Path, monkeypatch: Any) -> None:
    starts, _ = run_recording_starts(tmp_path, monkeypatch, warm_start=False)
    assert starts == [None, None, None]


def test_command_line_flag() -> None:
    parser = build_parser()
    args = parser.parse_args(["experiment", "--data", "d", "--out", "o", "--warm-start"])
    assert args.warm_start is True
    args = parser.parse_args(["experiment", "--data", "d", "--out", "o"])
    assert args.warm_start is False
