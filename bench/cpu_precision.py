"""Benchmark: training and prediction on the CPU in float32 against bf16 (``--cpu-bf16``).

    python bench/cpu_precision.py --data ../shared/data/ph2 --out bench/out/cpu_precision.json
    python bench/cpu_precision.py --data ../shared/data/busi --train-seeds 0 1 --threads 1

Arm A of ``samdsk experiment`` (a U-Net trained on the human labels of a seeded 10 % split,
the split's validation images, evaluated on its test images), trained twice per training
seed from the same initialisation and batches: once in float32, once under bf16 autocast.
The two alternate which goes first, on the same thread count, in one run. Reports seconds
per training step, seconds per test image predicted (flip-averaged, as the rounds predict),
test Dice of each and their paired difference on the test images (bf16 - float32, points,
with a bootstrap 95 % interval). bf16 only runs where the CPU computes it natively
(``samdsk.model.precision``); elsewhere the script says so and stops.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from samdsk.experiment import ExperimentConfig, load_experiment_data
from samdsk.experiment_report import evaluate
from samdsk.knowledge import ClassKnowledge
from samdsk.metrics import paired_difference
from samdsk.model import ModelConfig, TrainingSample, train_model
from samdsk.model.precision import cpu_has_native_bf16

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "ph2"
PRECISIONS = {"float32": False, "bf16": True}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if not cpu_has_native_bf16():
        print("this CPU has no native bf16 (AVX512-BF16 or AMX): nothing to compare")
        return 1
    torch.set_num_threads(args.threads)  # the training runs take at most this many
    model = ModelConfig(
        encoder=args.encoder,
        input_size=args.size,
        steps=args.steps,
        val_every=args.val_every,
        device="cpu",
    )
    experiment = ExperimentConfig(
        data=args.data,
        model=model,
        knowledge=ClassKnowledge(),
        labeled_fraction=args.labeled_fraction,
        size=args.size,
        seed=args.seed,
        arms=("A",),
    )
    data = load_experiment_data(experiment, show_progress_bar=True)
    human = [TrainingSample(s.image, s.mask) for s in data.labeled]
    val = [TrainingSample(s.image, s.mask) for s in data.validation]
    test = [TrainingSample(s.image, s.mask) for s in data.test]
    print(f"{len(human)} human labels, {len(val)} validation, {len(test)} test images")
    runs = []
    for index, train_seed in enumerate(args.train_seeds):
        order = list(PRECISIONS) if index % 2 == 0 else list(reversed(PRECISIONS))
        results: dict[str, dict[str, Any]] = {}
        for name in order:
            config = replace(model, seed=train_seed, cpu_bf16=PRECISIONS[name])
            results[name] = _train_and_test(config, human, val, test)
            print(
                f"training seed {train_seed}, {name}: {results[name]['seconds_per_step']:.3f} "
                f"s/step, test Dice {results[name]['test_dice']:.4f}"
            )
        difference = paired_difference(
            results["float32"].pop("per_image_dice"), results["bf16"].pop("per_image_dice")
        )
        runs.append(
            {
                "train_seed": train_seed,
                "first": order[0],
                **results,
                "bf16_minus_float32": difference,
            }
        )
    report = _report(args, runs)
    print(json.dumps(report["summary"], indent=2))
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {args.out}")
    return 0


def _train_and_test(
    config: ModelConfig,
    human: list[TrainingSample],
    val: list[TrainingSample],
    test: list[TrainingSample],
) -> dict[str, Any]:
    trained = train_model(human, config, val=val, show_progress_bar=True)
    started = time.perf_counter()
    evaluation = evaluate(trained, test)
    predict_seconds = time.perf_counter() - started
    return {
        "seconds_per_step": trained.seconds / config.steps,
        "train_seconds": trained.seconds,
        "predict_seconds_per_image": predict_seconds / len(test),
        "test_dice": evaluation.mean_dice,
        "test_iou": evaluation.mean_iou,
        "per_image_dice": evaluation.dice,
    }


def _report(args: argparse.Namespace, runs: list[dict[str, Any]]) -> dict[str, Any]:
    def mean(precision: str, key: str) -> float:
        return float(sum(run[precision][key] for run in runs)) / len(runs)

    summary: dict[str, Any] = {
        name: {
            "seconds_per_step": mean(name, "seconds_per_step"),
            "predict_seconds_per_image": mean(name, "predict_seconds_per_image"),
            "test_dice": mean(name, "test_dice"),
        }
        for name in PRECISIONS
    }
    summary["training_speedup"] = (
        summary["float32"]["seconds_per_step"] / summary["bf16"]["seconds_per_step"]
    )
    summary["prediction_speedup"] = (
        summary["float32"]["predict_seconds_per_image"]
        / summary["bf16"]["predict_seconds_per_image"]
    )
    summary["bf16_minus_float32_points"] = [r["bf16_minus_float32"]["mean_points"] for r in runs]
    return {
        "command": " ".join(sys.argv),
        "settings": {key: str(value) for key, value in vars(args).items()},
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "threads": args.threads,
            "torch": torch.__version__,
        },
        "runs": runs,
        "summary": summary,
    }


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="images/ and masks/")
    parser.add_argument("--labeled-fraction", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0, help="the split's seed")
    parser.add_argument("--train-seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--size", type=int, default=160)
    parser.add_argument("--encoder", default="resnet18")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--val-every", type=int, default=50)
    parser.add_argument("--threads", type=int, default=1, help="torch threads for every run")
    parser.add_argument("--out", type=Path, help="JSON report to write")
    return parser


if __name__ == "__main__":
    sys.exit(main())
