"""Comparing runs of ``samdsk experiment``: per-run rows and each arm's spread against A."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from samdsk.cli import main
from samdsk.errors import ConfigError
from samdsk.experiment_compare import compare_runs, format_comparison, read_report


def _report(
    split: int, train: int, dice: dict[str, float], threshold: float = 0.9
) -> dict[str, Any]:
    return {
        "settings": {
            "seed": split,
            "threshold": threshold,
            "arms": sorted(dice),
            "model": {"seed": train, "steps": 1000},
        },
        "arms": {arm: {"final_test_dice": value} for arm, value in dice.items()},
    }


def test_spread_of_each_arm_against_a_over_training_seeds() -> None:
    comparison = compare_runs(
        [
            ("t1", _report(1, 1, {"A": 0.80, "C": 0.82})),
            ("t2", _report(1, 2, {"A": 0.85, "C": 0.84})),
            ("t3", _report(1, 3, {"A": 0.90, "C": 0.93, "D": 0.95})),
        ]
    )
    assert [(r.split_seed, r.train_seed) for r in comparison.runs] == [(1, 1), (1, 2), (1, 3)]
    c, d = comparison.spreads
    assert (c.arm, c.runs, c.below_a) == ("C", 3, 1)
    assert c.mean == pytest.approx((2 - 1 + 3) / 3)
    assert (c.low, c.high) == (pytest.approx(-1.0), pytest.approx(3.0))
    assert c.sd == pytest.approx(2.0816, abs=1e-3)
    assert (d.runs, d.mean) == (1, pytest.approx(5.0)) and math.isnan(d.sd)
    assert comparison.differing == []  # seeds and arms may differ: that is the comparison


def test_settings_that_differ_beyond_the_seeds_are_named() -> None:
    comparison = compare_runs(
        [("a", _report(0, 0, {"A": 0.8, "C": 0.8})), ("b", _report(0, 1, {"A": 0.8}, 0.85))]
    )
    assert comparison.differing == ["threshold"]
    text = format_comparison(comparison)
    assert "settings that differ beyond the seeds: threshold" in text
    assert "C - A over 1 runs: mean +0.0 points (sd n/a" in text


def test_bad_reports_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="at least one"):
        compare_runs([])
    (tmp_path / "report.json").write_text("{not json")
    with pytest.raises(ConfigError, match="not a readable"):
        read_report(tmp_path)
    (tmp_path / "report.json").write_text(json.dumps({"arms": {}}))
    with pytest.raises(ConfigError, match="not an experiment report"):
        read_report(tmp_path / "report.json")


def test_compare_command_prints_and_writes_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, train, c in (("r1", 1, 0.81), ("r2", 2, 0.78)):
        (tmp_path / name).mkdir()
        report = _report(1, train, {"A": 0.80, "C": c})
        (tmp_path / name / "report.json").write_text(json.dumps(report))
    out = tmp_path / "compare.json"
    assert main(["compare", str(tmp_path / "r1"), str(tmp_path / "r2"), "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "r1" in printed and "r2" in printed and "below A in 1" in printed
    saved = json.loads(out.read_text())
    assert saved["versus_A_points"][0]["mean"] == pytest.approx(-0.5)
    assert main(["compare", str(tmp_path / "missing")]) == 1
    assert "not a readable experiment report" in capsys.readouterr().err
