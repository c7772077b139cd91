"""Array containers shared by the proposal sources, the matching and the service.

``Proposals`` holds the candidate regions of one image. It checks its own array contract on
construction, so every consumer can rely on it without re-validating.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from samdsk.errors import ShapeError


@dataclass(frozen=True)
class Proposals:
    """N candidate regions of one image.

    masks: N x H x W bool, one region per row (a region may be empty or disconnected).
    scores: N float32, higher = better; the meaning is source-defined (for SAM, its predicted
        IoU), so scores are comparable only within one source.
    source: name of the proposal source (e.g. ``"sam_vit_b"``, ``"slic"``).
    """

    masks: np.ndarray
    scores: np.ndarray
    source: str

    def __post_init__(self) -> None:
        masks, scores = self.masks, self.scores
        if not isinstance(masks, np.ndarray) or masks.ndim != 3 or masks.dtype != np.bool_:
            raise ShapeError(f"masks must be an N x H x W bool array; got {_describe(masks)}")
        if masks.shape[1] == 0 or masks.shape[2] == 0:
            raise ShapeError(f"masks must have a non-empty H x W; got shape {masks.shape}")
        if not isinstance(scores, np.ndarray) or scores.ndim != 1 or scores.dtype != np.float32:
            raise ShapeError(f"scores must be a 1-D float32 array; got {_describe(scores)}")
        if scores.shape[0] != masks.shape[0]:
            raise ShapeError(
                f"{masks.shape[0]} masks but {scores.shape[0]} scores; need one score per mask"
            )
        if not np.all(np.isfinite(scores)):
            raise ShapeError("scores must be finite")
        if not isinstance(self.source, str) or not self.source:
            raise ShapeError("source must be a non-empty string")

    def __len__(self) -> int:
        return int(self.masks.shape[0])

    @property
    def height(self) -> int:
        """Image height H in pixels."""
        return int(self.masks.shape[1])

    @property
    def width(self) -> int:
        """Image width W in pixels."""
        return int(self.masks.shape[2])

    @classmethod
    def empty(cls, height: int, width: int, source: str) -> Proposals:
        """No proposals for an image of height x width (0 x H x W masks, 0 scores)."""
        if height <= 0 or width <= 0:
            raise ShapeError(f"height and width must be positive; got {height} x {width}")
        return cls(
            masks=np.zeros((0, height, width), dtype=np.bool_),
            scores=np.zeros(0, dtype=np.float32),
            source=source,
        )


def _describe(value: object) -> str:
    if isinstance(value, np.ndarray):
        return f"{value.dtype} array of shape {value.shape}"
    return type(value).__name__
