"""Evaluation: how far the labels C accepted depart from the human labels' size mix, per run,
and which share ``ModelConfig.mix_human_share`` would have taken there.

    python bench/label_mix.py docs/results/busi_* docs/results/ph2_160px_* \\
        docs/results/kvasir_seg_128px_* --out docs/results/label_mix.json

For every experiment folder (its ``report.json``): the human labels of its split and the images
C accepted over its rounds, whose hidden ground-truth masks stand in for their labels (C's
labels reach Dice 0.85-0.94 against them), resized to the run's training size as a training
resizes them; the total variation distance between the two size mixes
(``samdsk.model.label_mix``) and whether it passes ``MIX_TOLERANCE``. Where the run has arm H
beside C (the same labels retrained with the human share), the rule's pick and its test Dice
against A follow, paired image by image as in the report.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from samdsk.dataset import find_pairs
from samdsk.imageio import read_mask
from samdsk.model.data import resize_mask
from samdsk.model.label_mix import MIX_TOLERANCE, mix_departure, size_mix


def masks_of(data: Path, stems: list[str], size: int) -> np.ndarray:
    pairs = {pair.stem: pair for pair in find_pairs(data)}
    return np.stack([resize_mask(read_mask(pairs[stem].mask_path), size) for stem in stems])


def run_summary(folder: Path, data_root: Path) -> dict[str, Any] | None:
    report = json.loads((folder / "report.json").read_text())
    accepted = [stem for row in report.get("samdsk_rounds", []) for stem in row["accepted"]]
    if not accepted:
        return None
    settings = report["settings"]
    data = data_root / Path(settings["data"]).name
    size = settings["model"]["input_size"]
    human = masks_of(data, report["split"]["labeled"], size)
    machine = masks_of(data, accepted, size)
    departure = mix_departure(human, machine)
    summary: dict[str, Any] = {
        "run": folder.name,
        "human": len(human),
        "machine": len(machine),
        "human_mix": size_mix(human).round(3).tolist(),
        "machine_mix": size_mix(machine).round(3).tolist(),
        "departure": round(departure, 3),
        "rule_takes_human_share": departure > MIX_TOLERANCE,
    }
    paired = report.get("paired_with_A", {})
    if "C" in paired and "H" in paired:
        picked = "H" if summary["rule_takes_human_share"] else "C"
        summary["C_minus_A"] = round(paired["C"]["mean_points"], 2)
        summary["H_minus_A"] = round(paired["H"]["mean_points"], 2)
        summary["rule_picks"] = picked
        summary["rule_minus_A"] = summary[f"{picked}_minus_A"]
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="experiment output folders")
    parser.add_argument("--data-root", type=Path, default=Path("../shared/data"))
    parser.add_argument("--out", type=Path, help="write the summaries as JSON here")
    args = parser.parse_args()
    summaries = []
    for folder in sorted(args.runs):
        if not (folder / "report.json").is_file():
            continue
        summary = run_summary(folder, args.data_root)
        if summary is None:
            continue
        summaries.append(summary)
        pick = (
            f"  rule: {summary['rule_picks']} {summary['rule_minus_A']:+.1f}"
            if "rule_picks" in summary
            else ""
        )
        print(
            f"{summary['run']:55s} {summary['human']:3d} human {summary['machine']:3d} machine "
            f"departure {summary['departure']:.2f} "
            f"{'share' if summary['rule_takes_human_share'] else 'plain'}{pick}"
        )
    if args.out:
        payload = {"tolerance": MIX_TOLERANCE, "runs": summaries}
        args.out.write_text(json.dumps(payload, indent=1) + "\n")


if __name__ == "__main__":
    main()
