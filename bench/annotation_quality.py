"""Evaluation: how good are the machine labels a round would add, and how well is each picked?

    python bench/annotation_quality.py --data ../shared/data/kvasir_seg --size 160 \\
        --encoder resnet18 --steps 1500 --out bench/out/kvasir_quality

Trains the supervised model (arm A of ``samdsk experiment``: the same split, the human-labelled
10%) or loads it from ``--model``, then scores every unlabelled pool image against its hidden
ground truth, side by side:

- selection: SamDSK's match score (on plain and on flip-averaged maps) against naive
  self-training's confidence (mean max(p, 1 - p)), by Spearman correlation with the label's
  true Dice and the mean Dice of the best-ranked 10/20/30 % of the pool;
- labels of the same images: the proposals' union (the paper's annotation), the model's own
  p > 0.5 mask, and the fused annotation (``samdsk.fusion``) at several bands;
- thresholds: how many images reach each match score and how good their labels are.

Writes ``OUT/quality.json`` and prints the tables. The proposal cache under ``OUT`` (or
``--cache``) makes a rerun cost only the predictions and matching.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import spearmanr

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from samdsk.experiment import ExperimentConfig, load_experiment_data
from samdsk.experiment_report import confidence, threshold_map
from samdsk.fusion import fuse_with_model
from samdsk.knowledge import PRESETS, ClassKnowledge
from samdsk.matching import match_classes
from samdsk.metrics import dice
from samdsk.model import ModelConfig, TrainingSample, load_checkpoint, save_checkpoint, train_model
from samdsk.model.train import TrainResult
from samdsk.proposals import ProposalCache
from samdsk.proposals.registry import build_proposal_source
from samdsk.rounds import predict_in_batches, propose_all

BANDS = (0.0, 0.1, 0.2, 0.3, 0.5)
SHARES = (10, 20, 30)
THRESHOLDS = (0.9, 0.85, 0.8, 0.75)


def main() -> int:
    args = parse_args()
    started = time.perf_counter()
    knowledge = PRESETS.get(args.data.resolve().name, ClassKnowledge())
    model = ModelConfig(
        encoder=args.encoder, input_size=args.size, steps=args.steps, device=args.device
    )
    config = ExperimentConfig(data=args.data, model=model, knowledge=knowledge, size=args.size)
    data = load_experiment_data(config, show_progress_bar=True)
    trained = supervised_model(args, data.labeled, data.validation, model)
    images = [s.image for s in data.unlabeled]
    truths = [s.mask > 0 for s in data.unlabeled]
    plain = predict_in_batches(trained, images, show_progress_bar=True)
    averaged = predict_in_batches(trained, images, show_progress_bar=True, flip_tta=True)
    cache = ProposalCache(args.cache or args.out / "proposal_cache")
    proposals = propose_all(build_proposal_source("offline"), cache, images, None, True)
    rows = []
    for found, p, pt, truth in zip(proposals, plain, averaged, truths, strict=True):
        match = match_classes(found, pt, (knowledge,))
        row: dict[str, float] = {
            "score_plain": match_classes(found, p, (knowledge,)).score,
            "score": match.score,
            "confidence": confidence(p),
            "model_dice": dice(threshold_map(pt) > 0, truth),
        }
        for band in BANDS:
            fused = fuse_with_model(match, pt, band=band).class_mask > 0
            row[f"band_{band}"] = dice(fused, truth)
        rows.append(row)
    report = summarize(rows, len(data.labeled))
    report["seconds"] = time.perf_counter() - started
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "quality.json").write_text(json.dumps(report, indent=2))
    print_tables(report)
    return 0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--model", type=Path, help="checkpoint of arm A (default: train it)")
    parser.add_argument("--cache", type=Path, help="proposal cache (default: OUT/proposal_cache)")
    parser.add_argument("--size", type=int, default=160)
    parser.add_argument("--encoder", default="resnet18")
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--device", default="auto")
    return parser.parse_args()


def supervised_model(
    args: argparse.Namespace, labeled: Any, validation: Any, model: ModelConfig
) -> TrainResult:
    if args.model is not None:
        network, config = load_checkpoint(args.model, device=args.device)
        return TrainResult(network, config, None, [], 0.0, args.device)
    trained = train_model(
        [TrainingSample(s.image, s.mask) for s in labeled],
        model,
        val=[TrainingSample(s.image, s.mask) for s in validation],
        show_progress_bar=True,
    )
    save_checkpoint(args.out / "supervised.pt", trained)
    return trained


def summarize(rows: list[dict[str, float]], labeled: int) -> dict[str, Any]:
    truth = np.array([r[f"band_{0.5}"] for r in rows])  # the union's Dice: what C would add
    fused = np.array([r["band_0.2"] for r in rows])
    selection = {}
    for name in ("score", "score_plain", "confidence"):
        keys = np.array([r[name] for r in rows])
        order = np.argsort(-keys, kind="stable")
        selection[name] = {
            "spearman_vs_label_dice": float(spearmanr(keys, fused)[0]),
            **{
                f"top_{share}%": float(fused[order[: len(rows) * share // 100]].mean())
                for share in SHARES
            },
        }
    scores = np.array([r["score"] for r in rows])
    labels = {}
    for tau in THRESHOLDS:
        picked = [r for r, s in zip(rows, scores, strict=True) if s >= tau]
        labels[str(tau)] = {
            "images": len(picked),
            "model_p>0.5": _mean([r["model_dice"] for r in picked]),
            **{f"band_{band}": _mean([r[f"band_{band}"] for r in picked]) for band in BANDS},
        }
    return {
        "pool": len(rows),
        "labeled": labeled,
        "mean_union_dice": float(truth.mean()),
        "selection_by": selection,
        "labels_at_threshold": labels,
    }


def _mean(values: list[float]) -> float | None:
    return float(np.mean(values)) if values else None


def print_tables(report: dict[str, Any]) -> None:
    print(f"pool {report['pool']} images; {report['labeled']} human labels")
    print(
        f"{'ranked by':<14}{'Spearman':>9}" + "".join(f"{'top ' + str(s) + '%':>9}" for s in SHARES)
    )
    for name, values in report["selection_by"].items():
        tops = "".join(f"{values[f'top_{s}%']:>9.3f}" for s in SHARES)
        print(f"{name:<14}{values['spearman_vs_label_dice']:>9.3f}{tops}")
    header = "".join(f"{'band ' + str(b):>10}" for b in BANDS)
    print(f"{'score >=':<9}{'images':>7}{'model':>8}{header}")
    for tau, values in report["labels_at_threshold"].items():
        cells = "".join(_cell(values[f"band_{b}"], 10) for b in BANDS)
        print(f"{tau:<9}{values['images']:>7}{_cell(values['model_p>0.5'], 8)}{cells}")


def _cell(value: float | None, width: int) -> str:
    return f"{'-':>{width}}" if value is None else f"{value:>{width}.3f}"


if __name__ == "__main__":
    raise SystemExit(main())
