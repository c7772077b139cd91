"""Benchmark: matching time per image on synthetic proposals.

    python bench/matching.py --sizes 256 512 --images 10 --proposals 50 150 300
    python bench/matching.py --out bench/out/matching.json

Each image gets ``count`` random elliptical blobs as proposals (areas 0.05% .. 10% of the
image, as SAM's automatic mask generator produces) and a probability map made from 1-3 of them,
blurred and noised like a model's output. Only ``match_proposals`` is timed; building the
inputs is not. One function per timed stage, so further stages (e.g. proposal generation) plug
into ``main`` the same way.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from samdsk.knowledge import PRESETS, ClassKnowledge
from samdsk.matching import match_proposals
from samdsk.types import Proposals


def random_blobs(size: int, count: int, rng: np.random.Generator) -> Proposals:
    """count random ellipses on a size x size image, drawn inside their bounding boxes."""
    masks = np.zeros((count, size, size), dtype=np.bool_)
    for mask in masks:
        area = rng.uniform(0.0005, 0.1) * size * size
        ratio = rng.uniform(0.5, 2.0)
        a, b = np.sqrt(area * ratio / np.pi), np.sqrt(area / ratio / np.pi)
        cy, cx, angle = rng.uniform(0, size), rng.uniform(0, size), rng.uniform(0, np.pi)
        r = int(np.ceil(max(a, b)))
        y0, y1, x0, x1 = (
            max(0, int(cy) - r),
            min(size, int(cy) + r + 1),
            max(0, int(cx) - r),
            min(size, int(cx) + r + 1),
        )
        yy, xx = np.mgrid[y0:y1, x0:x1]
        u = (xx - cx) * np.cos(angle) + (yy - cy) * np.sin(angle)
        v = (yy - cy) * np.cos(angle) - (xx - cx) * np.sin(angle)
        mask[y0:y1, x0:x1] = (u / a) ** 2 + (v / b) ** 2 <= 1.0
    scores = rng.uniform(0.7, 1.0, count).astype(np.float32)
    return Proposals(masks, scores, "random_blobs")


def model_like_probability(proposals: Proposals, rng: np.random.Generator) -> np.ndarray:
    """An H x W float32 map in [0, 1]: 1-3 of the proposals, blurred, plus low noise."""
    lesions = rng.choice(
        len(proposals), size=min(len(proposals), int(rng.integers(1, 4))), replace=False
    )
    truth = proposals.masks[lesions].any(axis=0).astype(np.float32)
    blurred = ndimage.gaussian_filter(truth, sigma=proposals.height / 128)
    noise = rng.uniform(0.0, 0.05, blurred.shape).astype(np.float32)
    return np.asarray(np.clip(blurred * 0.95 + noise, 0.0, 1.0), dtype=np.float32)


def time_matching(
    size: int, count: int, images: int, knowledge: ClassKnowledge, seed: int
) -> dict[str, object]:
    """Match ``images`` synthetic images of size x size with ``count`` proposals each."""
    rng = np.random.default_rng(seed)
    seconds: list[float] = []
    scores: list[float] = []
    solvers: dict[str, int] = {}
    for _ in range(images):
        proposals = random_blobs(size, count, rng)
        probability = model_like_probability(proposals, rng)
        start = time.perf_counter()
        match = match_proposals(proposals, probability, knowledge)
        seconds.append(time.perf_counter() - start)
        scores.append(match.score)
        solvers[match.solver] = solvers.get(match.solver, 0) + 1
    per_image = np.asarray(seconds)
    return {
        "stage": "matching",
        "size": size,
        "proposals": count,
        "images": images,
        "images_per_second": float(images / per_image.sum()),
        "mean_ms": float(per_image.mean() * 1e3),
        "p95_ms": float(np.percentile(per_image, 95) * 1e3),
        "mean_score": float(np.mean(scores)),
        "solvers": solvers,
    }


def format_table(rows: list[dict[str, object]]) -> str:
    """A fixed-width text table of benchmark rows."""
    header = f"{'stage':<10} {'size':>5} {'props':>6} {'images':>6} {'img/s':>8} "
    header += f"{'mean ms':>8} {'p95 ms':>8} {'score':>6}"
    lines = [header, "-" * len(header)]
    for row in rows:
        lines.append(
            f"{row['stage']!s:<10} {row['size']!s:>5} {row['proposals']!s:>6} "
            f"{row['images']!s:>6} {row['images_per_second']:>8.1f} {row['mean_ms']:>8.1f} "
            f"{row['p95_ms']:>8.1f} {row['mean_score']:>6.3f}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--images", type=int, default=10, help="images per configuration")
    parser.add_argument("--proposals", type=int, nargs="+", default=[50, 150, 300])
    parser.add_argument("--preset", choices=sorted(PRESETS), default="kvasir_seg")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="write the rows as JSON to this path")
    args = parser.parse_args(argv)
    if args.images < 1 or min(args.sizes) < 8 or min(args.proposals) < 1:
        parser.error("need --images >= 1, --sizes >= 8 and --proposals >= 1")
    knowledge = PRESETS[args.preset]
    rows = [
        time_matching(size, count, args.images, knowledge, args.seed)
        for size in args.sizes
        for count in args.proposals
    ]
    print(format_table(rows))
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        report = {
            "preset": args.preset,
            "knowledge": knowledge.to_dict(),
            "machine": {
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
                "numpy": np.__version__,
            },
            "rows": rows,
        }
        args.out.write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
