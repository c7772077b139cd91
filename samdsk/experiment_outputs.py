"""What an experiment writes: report.json, a CSV per arm, the plots and the machine labels."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from samdsk import plots
from samdsk.experiment import ARMS, SAMDSK_ARMS, ExperimentResult
from samdsk.experiment_report import label_dice, write_json, write_rounds_csv

GRID_TILES = 16  # labels per PNG grid


def write_outputs(result: ExperimentResult, out: Path) -> dict[str, Any]:
    """Write report.json, rounds_<arm>.csv per arm, the PNG plots (the accepted labels best
    ranked first, and furthest from the truth first) and machine_labels/ into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    report = result.report()
    write_json(out / "report.json", report)
    for key, arm in result.arms.items():
        write_rounds_csv(out / f"rounds_{ARMS[key]}.csv", arm.rows)
    curves = {
        f"{key} {ARMS[key]}": [(row.round, row.test_dice) for row in arm.rows]
        for key, arm in result.arms.items()
    }
    rounds = max(len(arm.rows) for arm in result.arms.values()) - 1
    for key in ("A", "D"):  # one model each: draw it as a level line over all rounds
        if key in result.arms:
            level = result.arms[key].rows[0].test_dice
            curves[f"{key} {ARMS[key]}"] = [(r, level) for r in range(max(rounds, 1) + 1)]
    plots.plot_test_dice(curves, out / "test_dice.png")
    for key in SAMDSK_ARMS:
        if key in result.arms:
            _write_samdsk_outputs(result, key, out, "" if key == "C" else "_peer_maps")
    return report


def _write_samdsk_outputs(result: ExperimentResult, arm: str, out: Path, suffix: str) -> None:
    """A SamDSK arm's match-score histogram, label grids and machine labels (file names
    ending in ``suffix``)."""
    scores = {r.number: [c.score for c in r.candidates] for r in result.arms[arm].rounds}
    plots.plot_score_histogram(scores, result.config.threshold, out / f"match_scores{suffix}.png")
    tiles = _accepted_tiles(result, arm)
    best_ranked = [tile for _, tile in tiles[:GRID_TILES]]
    # the labels furthest from the truth: what a wrong label looks like, and why it scored
    worst = [tile for _, tile in sorted(tiles, key=lambda pair: pair[0])[:GRID_TILES]]
    plots.plot_label_grid(best_ranked, out / f"accepted_labels{suffix}.png")
    plots.plot_label_grid(worst, out / f"worst_accepted_labels{suffix}.png")
    write_machine_labels(result, out / f"machine_labels{suffix}", arm)


def _accepted_tiles(result: ExperimentResult, arm: str) -> list[tuple[float, plots.LabelTile]]:
    """Every accepted machine label of a SamDSK arm as (its Dice against the hidden truth, a
    tile titled with its score and that Dice), round by round in rank order."""
    tiles: list[tuple[float, plots.LabelTile]] = []
    pool = result.data.unlabeled
    for r in result.arms[arm].rounds:
        for i in r.accepted:
            c = r.candidate(i)
            truth = pool[i].mask
            dice = label_dice([c.match.class_mask], [truth])[0]
            title = f"{pool[i].stem[:16]} r{r.number}\nscore {c.score:.3f} Dice {dice:.3f}"
            tile = plots.LabelTile(pool[i].image, c.match.class_mask > 0, truth, title)
            tiles.append((dice, tile))
    return tiles


def write_machine_labels(result: ExperimentResult, folder: Path, arm: str = "C") -> None:
    """A SamDSK arm's accepted labels as ``folder/round_<n>/<stem>.png`` (single-channel, 0
    or 255, at the experiment's image size), so each can be opened over its image."""
    for r in result.arms[arm].rounds:
        target = folder / f"round_{r.number}"
        if r.accepted:
            target.mkdir(parents=True, exist_ok=True)
        for i in r.accepted:
            mask = np.where(r.candidate(i).match.class_mask > 0, 255, 0).astype(np.uint8)
            Image.fromarray(mask).save(target / f"{result.data.split.unlabeled[i]}.png")
