"""Several experiment runs side by side: each arm's test Dice per run and its difference to A,
summarised over the runs.

One run compares arms on one split with one training trajectory. On small test sets the
trajectory alone moves a model by points (PH2, one split, training seeds 1-3: A 0.867-0.882),
so a single run's C - A can be a draw of the training. Runs that differ only in
``--train-seed`` (or in ``--seed``, the split) show how far a difference holds.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from samdsk.errors import ConfigError

# Settings that may differ between runs being compared: what they vary is the point.
VARYING_SETTINGS = ("seed", "model.seed")


@dataclass(frozen=True)
class RunSummary:
    """One run: its name, split and training seeds, final test Dice per arm."""

    name: str
    split_seed: int
    train_seed: int
    test_dice: dict[str, float]

    def versus_a(self, arm: str) -> float | None:
        """``arm`` - A in Dice points, None where the run lacks either."""
        if arm not in self.test_dice or "A" not in self.test_dice:
            return None
        return 100.0 * (self.test_dice[arm] - self.test_dice["A"])


@dataclass(frozen=True)
class ArmSpread:
    """An arm's difference to A over the runs that have it, in Dice points."""

    arm: str
    runs: int
    mean: float
    sd: float
    low: float
    high: float
    below_a: int


@dataclass(frozen=True)
class Comparison:
    """The runs, the spread of each arm's difference to A, and the settings that differ
    between runs beyond the seeds (empty: the runs are repeats of one setting)."""

    runs: list[RunSummary]
    spreads: list[ArmSpread]
    differing: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {
            "runs": [vars(run) for run in self.runs],
            "versus_A_points": [vars(spread) for spread in self.spreads],
            "differing_settings": self.differing,
        }


def read_report(path: Path) -> dict[str, Any]:
    """The report.json of a run folder (or the file itself)."""
    file = path / "report.json" if path.is_dir() else path
    try:
        report = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise ConfigError(f"{file}: not a readable experiment report ({error})") from error
    if not isinstance(report, dict) or "arms" not in report or "settings" not in report:
        raise ConfigError(f"{file}: not an experiment report (no 'arms' or 'settings')")
    return report


def compare_runs(named: Sequence[tuple[str, Mapping[str, Any]]]) -> Comparison:
    """Summarise reports (name, report.json content) of runs of ``samdsk experiment``."""
    if not named:
        raise ConfigError("name at least one run to compare")
    runs = [_run_summary(name, report) for name, report in named]
    arms = sorted({arm for run in runs for arm in run.test_dice} - {"A"})
    spreads = []
    for arm in arms:
        points = [p for p in (run.versus_a(arm) for run in runs) if p is not None]
        if points:
            values = np.asarray(points)
            spreads.append(
                ArmSpread(
                    arm=arm,
                    runs=len(points),
                    mean=float(values.mean()),
                    sd=float(values.std(ddof=1)) if len(points) > 1 else math.nan,
                    low=float(values.min()),
                    high=float(values.max()),
                    below_a=int((values < 0).sum()),
                )
            )
    return Comparison(runs, spreads, _differing_settings([report for _, report in named]))


def format_comparison(comparison: Comparison) -> str:
    """A plain-text table: one line per run, then each arm's difference to A over the runs."""
    arms = sorted({arm for run in comparison.runs for arm in run.test_dice})
    width = max(len("run"), *(len(run.name) for run in comparison.runs))
    lines = [f"{'run':<{width}}  split  train" + "".join(f"{arm:>8}" for arm in arms)]
    for run in comparison.runs:
        cells = "".join(
            f"{run.test_dice[arm]:>8.4f}" if arm in run.test_dice else f"{'':>8}" for arm in arms
        )
        lines.append(f"{run.name:<{width}}  {run.split_seed:>5}  {run.train_seed:>5}{cells}")
    for spread in comparison.spreads:
        sd = "n/a" if math.isnan(spread.sd) else f"{spread.sd:.1f}"
        lines.append(
            f"{spread.arm} - A over {spread.runs} runs: mean {spread.mean:+.1f} points "
            f"(sd {sd}, {spread.low:+.1f} to {spread.high:+.1f}); below A in {spread.below_a}"
        )
    if comparison.differing:
        lines.append("settings that differ beyond the seeds: " + ", ".join(comparison.differing))
    return "\n".join(lines)


def _run_summary(name: str, report: Mapping[str, Any]) -> RunSummary:
    settings = report["settings"]
    return RunSummary(
        name=name,
        split_seed=int(settings["seed"]),
        train_seed=int(settings["model"]["seed"]),
        test_dice={key: float(arm["final_test_dice"]) for key, arm in report["arms"].items()},
    )


def _differing_settings(reports: Sequence[Mapping[str, Any]]) -> list[str]:
    """Dotted names of settings whose values differ between reports, seeds and arms aside."""
    flat = [_flatten(report["settings"]) for report in reports]
    keys = sorted(set().union(*flat) - set(VARYING_SETTINGS) - {"arms"})
    return [key for key in keys if len({json.dumps(f.get(key)) for f in flat}) > 1]


def _flatten(settings: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in settings.items():
        if isinstance(value, Mapping):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat
