"""Benchmark: images per second of proposal generation and of matching.

    python bench/matching.py --sizes 256 512 --images 10 --proposals 50 150 300
    python bench/matching.py --stages proposals --workers 1 2 --images 20
    python bench/matching.py --out bench/out/matching.json

proposals: the offline (classical) source on real images from ``--data`` (default Kvasir-SEG
beside the checkout), resized to size x size, once per worker count
(``samdsk.proposals.parallel``), side by side in one run; the time includes starting the
worker processes. matching: each image gets ``count`` random elliptical blobs as proposals
(areas 0.05% .. 10% of the image, as SAM's automatic mask generator produces) and a probability
map made from 1-3 of them, blurred and noised like a model's output; only ``match_proposals``
is timed, building the inputs is not.
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

from samdsk.dataset import IMAGE_SUFFIXES
from samdsk.imageio import read_image
from samdsk.knowledge import PRESETS, ClassKnowledge
from samdsk.matching import match_proposals
from samdsk.proposals import OfflineProposalSource
from samdsk.proposals.parallel import propose_many
from samdsk.types import Proposals

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "kvasir_seg" / "images"


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


def load_square_images(folder: Path, size: int, count: int) -> list[np.ndarray]:
    """The first ``count`` images of a folder (sorted), resized to size x size RGB."""
    from PIL import Image

    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if len(paths) < count:
        raise SystemExit(f"need {count} images in {folder}; found {len(paths)}")
    return [
        np.asarray(Image.fromarray(read_image(path)).resize((size, size), Image.BILINEAR))
        for path in paths[:count]
    ]


def time_proposals(images: list[np.ndarray], workers: int) -> dict[str, object]:
    """Offline proposals of every image with ``workers`` processes, wall time."""
    start = time.perf_counter()
    found = propose_many(OfflineProposalSource(), None, images, workers=workers)
    seconds = time.perf_counter() - start
    return {
        "stage": "proposals",
        "size": images[0].shape[0],
        "workers": workers,
        "proposals": round(float(np.mean([len(p) for p in found])), 1),
        "images": len(images),
        "images_per_second": float(len(images) / seconds),
        "mean_ms": float(seconds / len(images) * 1e3),
        "p95_ms": None,
        "mean_score": None,
    }


def format_table(rows: list[dict[str, object]]) -> str:
    """A fixed-width text table of benchmark rows."""
    header = f"{'stage':<10} {'size':>5} {'workers':>7} {'props':>6} {'images':>6} "
    header += f"{'img/s':>8} {'mean ms':>8} {'p95 ms':>8} {'score':>6}"
    lines = [header, "-" * len(header)]
    for row in rows:
        p95, score = row["p95_ms"], row["mean_score"]
        lines.append(
            f"{row['stage']!s:<10} {row['size']!s:>5} {row.get('workers', '-')!s:>7} "
            f"{row['proposals']!s:>6} {row['images']!s:>6} {row['images_per_second']:>8.2f} "
            f"{row['mean_ms']:>8.1f} {'-' if p95 is None else f'{p95:.1f}':>8} "
            f"{'-' if score is None else f'{score:.3f}':>6}"
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
    parser.add_argument(
        "--stages", nargs="+", choices=("proposals", "matching"), default=["proposals", "matching"]
    )
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="images for proposals")
    parser.add_argument(
        "--workers", type=int, nargs="+", help="proposal processes (default: 1 and all CPUs)"
    )
    parser.add_argument("--out", type=Path, help="write the rows as JSON to this path")
    args = parser.parse_args(argv)
    workers = args.workers or sorted({1, os.cpu_count() or 1})
    if args.images < 1 or min(args.sizes) < 8 or min(args.proposals) < 1 or min(workers) < 1:
        parser.error("need --images >= 1, --sizes >= 8, --proposals >= 1 and --workers >= 1")
    if "proposals" in args.stages and not args.data.is_dir():
        parser.error(f"no images at {args.data}: pass --data DIR or --stages matching")
    knowledge = PRESETS[args.preset]
    rows: list[dict[str, object]] = []
    for size in args.sizes:
        if "proposals" in args.stages:
            images = load_square_images(args.data, size, args.images)
            rows += [time_proposals(images, count) for count in workers]
        if "matching" in args.stages:
            rows += [
                time_matching(size, count, args.images, knowledge, args.seed)
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
