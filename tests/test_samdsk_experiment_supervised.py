"""Arm A's models kept by one experiment and loaded by the next (``--keep-supervised``,
``--supervised-from``)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import torch

import samdsk.augment_choice
import samdsk.experiment
from samdsk.augment_choice import AUTO_AUGMENT_CHOICES
from samdsk.cli import main
from samdsk.errors import CheckpointError, ConfigError
from samdsk.experiment import ExperimentConfig, run_experiment
from samdsk.experiment_outputs import write_outputs
from samdsk.proposals import build_proposal_source
from tests.test_samdsk_experiment import TINY_MODEL, _tiny_experiment, _write_folder


def _auto_experiment(data: Path, **settings: Any) -> ExperimentConfig:
    """One round on the tiny model under both policies, C matching against peer maps."""
    return _tiny_experiment(
        data,
        labeled_fraction=0.4,
        rounds=1,
        size=48,
        threshold=0.0,  # accept candidates, so C trains a model of its own
        max_new_per_round=2,
        arms=("A", "C"),
        augment_choices=AUTO_AUGMENT_CHOICES,
        peer_maps=True,
        **settings,
    )


def _results(report: dict[str, Any], arm: str) -> list[dict[str, Any]]:
    """An arm's rows without the wall time they took."""
    return [
        {k: v for k, v in row.items() if k != "train_seconds"}
        for row in report["arms"][arm]["rounds"]
    ]


def _count_trainings(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The policy of every training from now on (A's under each policy, then C's)."""
    policies: list[str] = []
    for module in (samdsk.experiment, samdsk.augment_choice):
        real = module.train_model

        def counting(samples: Any, model: Any, _real: Any = real, **kwargs: Any) -> Any:
            policies.append(model.machine_augment)
            return _real(samples, model, **kwargs)

        monkeypatch.setattr(module, "train_model", counting)
    return policies


def test_a_later_run_loads_a_and_repeats_every_arm_without_training_a(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = _write_folder(tmp_path / "data", 12)
    kept = tmp_path / "supervised"
    source = build_proposal_source("offline")
    first = write_outputs(
        run_experiment(_auto_experiment(data, keep_supervised=kept), source), tmp_path / "one"
    )
    index = json.loads((kept / "index.json").read_text())
    assert sorted(index["models"]) == ["same", "strong_all"]
    assert all((kept / f"{policy}.pt").is_file() for policy in index["models"])

    trainings = _count_trainings(monkeypatch)
    lines: list[str] = []
    config = _auto_experiment(data, supervised_from=tmp_path / "supervised")
    again = write_outputs(run_experiment(config, source, log=lines.append), tmp_path / "two")
    chosen = first["augment_choice"]["chosen"]
    assert trainings == [chosen]  # C's retraining only: A came from the folder
    assert any("loaded from" in line and "not trained" in line for line in lines)
    assert again["augment_choice"] == first["augment_choice"]
    for arm in ("A", "C"):  # the same A, so the same labels and the same C
        assert _results(again, arm) == _results(first, arm)
    assert again["samdsk_rounds"][0]["accepted"] == first["samdsk_rounds"][0]["accepted"]


def test_models_of_another_split_or_training_are_refused(tmp_path: Path) -> None:
    data = _write_folder(tmp_path / "data", 12)
    kept = tmp_path / "supervised"
    source = build_proposal_source("offline")
    plain = {"arms": ("A",), "labeled_fraction": 0.4, "rounds": 1, "size": 48}
    run_experiment(_tiny_experiment(data, keep_supervised=kept, **plain), source)
    assert json.loads((kept / "index.json").read_text())["models"].keys() == {"same"}

    longer = replace(TINY_MODEL, steps=3)
    with pytest.raises(ConfigError, match="model steps 2 -> 3"):
        run_experiment(_tiny_experiment(data, model=longer, supervised_from=kept, **plain), source)
    with pytest.raises(ConfigError, match="labeled"):
        run_experiment(_tiny_experiment(data, supervised_from=kept, seed=5, **plain), source)
    with pytest.raises(ConfigError, match="augment_choices"):
        run_experiment(_auto_experiment(data, supervised_from=kept), source)
    # where it runs is no part of what was trained
    pinned = replace(TINY_MODEL, cpu_threads=2)
    run_experiment(_tiny_experiment(data, model=pinned, supervised_from=kept, **plain), source)


def test_a_missing_or_foreign_folder_is_a_clear_error(tmp_path: Path) -> None:
    data = _write_folder(tmp_path / "data", 12)
    source = build_proposal_source("offline")
    plain = {"arms": ("A",), "labeled_fraction": 0.4, "rounds": 1, "size": 48}
    with pytest.raises(CheckpointError, match="no supervised models"):
        run_experiment(_tiny_experiment(data, supervised_from=tmp_path / "none", **plain), source)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "index.json").write_text('{"format": "other"}')
    with pytest.raises(CheckpointError, match=r"not a samdsk\.supervised/1 index"):
        run_experiment(_tiny_experiment(data, supervised_from=foreign, **plain), source)
    with pytest.raises(ConfigError, match="already names"):
        _tiny_experiment(data, supervised_from=foreign, keep_supervised=foreign, **plain)
    with pytest.raises(ConfigError, match="pretraining"):
        _tiny_experiment(data, supervised_from=foreign, pretrain_steps=2, **plain)


def test_the_cli_keeps_models_under_out_and_loads_them_from_there(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _write_folder(tmp_path / "data", 12)
    argv = ["experiment", "--data", str(data), "--labeled-fraction", "0.4", "--rounds", "1"]
    argv += ["--size", "64", "--arms", "A", "--encoder", "tu-mobilenetv3_small_050"]
    argv += ["--steps", "2", "--batch-size", "2", "--val-every", "2", "--cpu-threads", "1"]
    assert main([*argv, "--out", str(tmp_path / "one"), "--keep-supervised"]) == 0
    saved = torch.load(tmp_path / "one" / "supervised" / "same.pt", weights_only=True)
    assert saved["format"] == "samdsk.model/1"
    capsys.readouterr()
    assert (
        main([*argv, "--out", str(tmp_path / "two"), "--supervised-from", str(tmp_path / "one")])
        == 0
    )
    assert "not trained" in capsys.readouterr().out
    first = json.loads((tmp_path / "one" / "report.json").read_text())
    second = json.loads((tmp_path / "two" / "report.json").read_text())
    assert _results(second, "A") == _results(first, "A")
    assert main([*argv, "--out", str(tmp_path / "three"), "--supervised-from", str(data)]) == 1
    assert "no supervised models" in capsys.readouterr().err
