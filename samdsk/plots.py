"""PNG figures of experiments, proposals and matches (matplotlib, Agg canvas, no pyplot).

Figures are drawn on their own ``Figure`` objects, so nothing here touches matplotlib's global
backend or state, and drawing works on machines without a display.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from samdsk.matching import MultiClassMatch
from samdsk.types import Proposals

MACHINE_COLOUR = "lime"
TRUTH_COLOUR = "red"
PROBABILITY_COLOUR = "cyan"


@dataclass(frozen=True)
class LabelTile:
    """One tile of a label grid: image H x W x 3 uint8, label and truth H x W bool."""

    image: np.ndarray
    label: np.ndarray
    truth: np.ndarray | None
    title: str


def plot_test_dice(curves: Mapping[str, Sequence[tuple[int, float]]], path: Path) -> None:
    """Test Dice (y) against round (x), one line per arm: ``{arm: [(round, dice), ...]}``."""
    figure, ax = _figure(6.0, 4.0)
    for arm, points in curves.items():
        if points:
            rounds, values = zip(*points, strict=True)
            ax.plot(rounds, values, marker="o", label=arm)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("round (machine labels added this many times)")
    ax.set_ylabel("test Dice (mean per image)")
    ax.set_ylim(0.0, 1.0)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize="small")
    _save(figure, path)


def plot_score_histogram(
    scores: Mapping[int, Sequence[float]], threshold: float, path: Path
) -> None:
    """Histogram of match scores in [0, 1] per round ``{round: scores}``, threshold marked."""
    figure, ax = _figure(6.0, 4.0)
    bins = [i / 20 for i in range(21)]
    for number, values in scores.items():
        if len(values):
            ax.hist(np.asarray(values), bins=bins, alpha=0.5, label=f"round {number}")
    ax.axvline(threshold, color="black", linestyle="--", label=f"threshold {threshold:g}")
    ax.set_xlabel("match score")
    ax.set_ylabel("images")
    ax.legend(fontsize="small")
    _save(figure, path)


def plot_label_grid(tiles: Sequence[LabelTile], path: Path, columns: int = 4) -> None:
    """Images with label contours (green) and hidden-truth contours (red), titled."""
    rows = max(1, -(-len(tiles) // columns))
    figure = _new_figure(3.0 * columns, 3.0 * rows)
    for i in range(rows * columns):
        ax = figure.add_subplot(rows, columns, i + 1)
        ax.set_axis_off()
        if i >= len(tiles):
            continue
        tile = tiles[i]
        ax.imshow(tile.image)
        _contour(ax, tile.label, MACHINE_COLOUR)
        if tile.truth is not None:
            _contour(ax, tile.truth, TRUTH_COLOUR)
        ax.set_title(tile.title, fontsize="small")
    if not tiles:
        figure.text(0.5, 0.5, "no accepted machine labels", ha="center", va="center")
    _save(figure, path)


def plot_proposals(image: np.ndarray, proposals: Proposals, path: Path, top: int = 20) -> int:
    """Contours of the ``top`` best-scoring proposals over an H x W x 3 uint8 image, one
    colour each; returns how many were drawn."""
    order = np.argsort(-proposals.scores, kind="stable")[:top]
    figure, ax = _figure(6.0, 6.0 * image.shape[0] / image.shape[1])
    ax.imshow(image)
    colours = matplotlib.colormaps["tab20"]
    for rank, i in enumerate(order):
        _contour(ax, proposals.masks[i], colours(rank % 20))
    ax.set_title(f"{len(order)} of {len(proposals)} proposals ({proposals.source})")
    ax.set_axis_off()
    _save(figure, path)
    return len(order)


def plot_match(
    image: np.ndarray,
    proposals: Proposals,
    match: MultiClassMatch,
    path: Path,
    probability: np.ndarray | None = None,
) -> None:
    """The chosen proposals (green) over an H x W x 3 uint8 image, the match score in the
    title; with ``probability`` (C x H x W in [0, 1]) its 0.5 level too (dashed cyan)."""
    figure, ax = _figure(6.0, 6.0 * image.shape[0] / image.shape[1])
    ax.imshow(image)
    if probability is not None:
        for channel in probability:
            _contour(ax, channel > 0.5, PROBABILITY_COLOUR, width=1.0, style="dashed")
    chosen = sorted({i for m in match.per_class for i in m.chosen})
    for i in chosen:
        _contour(ax, proposals.masks[i], MACHINE_COLOUR, width=2.0)
    ax.set_title(f"match score {match.score:.3f}; chosen proposals {chosen}", fontsize="medium")
    ax.set_axis_off()
    _save(figure, path)


def _contour(
    ax: Axes, mask: np.ndarray, colour: object, width: float = 1.5, style: str = "solid"
) -> None:
    # An empty or full mask has no boundary; matplotlib would warn about missing levels.
    if mask.any() and not mask.all():
        ax.contour(
            mask.astype(np.float32),
            levels=[0.5],
            colors=[colour],
            linewidths=width,
            linestyles=style,
        )


def _new_figure(width: float, height: float) -> Figure:
    figure = Figure(figsize=(width, max(height, 2.0)), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _figure(width: float, height: float) -> tuple[Figure, Axes]:
    figure = _new_figure(width, height)
    return figure, figure.add_subplot(1, 1, 1)


def _save(figure: Figure, path: Path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
