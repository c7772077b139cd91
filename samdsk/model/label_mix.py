"""Whether the machine labels are of another mix than the human labels, and the human share
of every batch that follows from it (``ModelConfig.mix_human_share``).

The method accepts the images its model and the proposals agree on, and those are not a draw
from the pool: on BUSI they are 64-91 % benign lesions of a few per cent of the image and
never a normal (empty) image, while the human labels are half normal images. Retrained on that
mix, a model marks lesions on normal images and loses the malignant ones; holding half of every
batch human keeps the human labels' mix. On PH2 the accepted lesions are sized like the human
ones, and there the same share only takes data away. The mix is told apart without knowing any
class: by the share of labels in each band of foreground size (``SIZE_BANDS``), compared by
total variation distance. Over the runs in the README's results (``bench/label_mix.py``),
BUSI's distances are 0.40 to 0.72 where empty annotations wait for a reviewer (so no machine
label is empty), PH2's 0.01 to 0.16 and Kvasir-SEG's 0.22 to 0.25 at its current settings (the
smallest polyps are matched less often); ``MIX_TOLERANCE`` 0.3 lies between.
"""

from __future__ import annotations

import numpy as np

# Upper edges of the foreground share of the image: empty, under 5 %, 5-20 %, the rest.
SIZE_BANDS = (0.0, 0.05, 0.2)
MIX_TOLERANCE = 0.3


def size_mix(masks: np.ndarray) -> np.ndarray:
    """The share of masks (N x H x W, 0 = background) in each band of foreground size: empty,
    under 5 % of the image, 5-20 %, 20 % or more. Sums to 1; an empty N gives all zeros."""
    if masks.ndim != 3:
        raise ValueError(f"masks must be N x H x W; got shape {masks.shape}")
    if len(masks) == 0:
        return np.zeros(len(SIZE_BANDS) + 1)
    foreground = (masks.reshape(len(masks), -1) > 0).mean(axis=1)
    empty = foreground == 0.0
    band = np.where(empty, 0, 1 + np.searchsorted(SIZE_BANDS[1:], foreground, side="right"))
    return np.bincount(band, minlength=len(SIZE_BANDS) + 1) / len(masks)


def mix_departure(human: np.ndarray, machine: np.ndarray) -> float:
    """Total variation distance between the size mixes of two mask stacks, in [0, 1]: the
    share of labels that would have to change band for the mixes to agree."""
    if len(human) == 0 or len(machine) == 0:
        return 0.0
    return float(0.5 * np.abs(size_mix(human) - size_mix(machine)).sum())


def human_share_for_mix(
    masks: np.ndarray, machine: np.ndarray, share: float, tolerance: float = MIX_TOLERANCE
) -> tuple[float, float]:
    """(human share to train with, departure): ``share`` where the machine-made labels
    (``machine`` true) depart from the human ones by more than ``tolerance``, else 0."""
    departure = mix_departure(masks[~machine], masks[machine])
    return (share if departure > tolerance else 0.0), departure
