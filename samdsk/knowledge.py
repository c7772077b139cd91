"""Image-level domain knowledge: how many regions of a class an image holds, and how large.

The matching uses it as hard constraints: a proposal whose area lies outside
[min_area, max_area] is never a candidate, and a constructed annotation has between
min_regions and max_regions regions. ``min_regions == 0`` means the class may be absent, so
an empty annotation is allowed (and scored, see ``samdsk.matching``).

Presets come from the public data sets under ``shared/data`` (per-region area fraction =
connected component area / image area, specks under 0.1% ignored):

=========== ======= ================== ===================== =================
data set    regions measured region area  preset area bounds    preset regions
=========== ======= ================== ===================== =================
kvasir_seg  1-3 *   0.19% .. 76%         0.1% .. 90%           1..3
ph2         1       3.1% .. 98%          1% .. 100%            1..1
busi        0-2     0.50% .. 38%         0.2% .. 60%           0..2
=========== ======= ================== ===================== =================

(*) 95% of Kvasir-SEG images hold one polyp; a handful hold more than three tiny fragments.
The bounds leave generous margins: they exist to drop proposals that are clearly not a lesion
(a speck, the whole frame), not to fit the data sets tightly.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import asdict, dataclass

from samdsk.errors import ConfigError

KNOWLEDGE_KEYS = ("min_regions", "max_regions", "min_area", "max_area")


@dataclass(frozen=True)
class ClassKnowledge:
    """Image-level knowledge for one class.

    min_regions, max_regions: allowed number of regions, 0 <= min_regions <= max_regions,
        max_regions >= 1 (min_regions == 0: the class may be absent from the image).
    min_area, max_area: allowed area of each region as a fraction of the image area,
        0 <= min_area <= max_area <= 1.
    """

    min_regions: int = 1
    max_regions: int = 1
    min_area: float = 0.0
    max_area: float = 1.0

    def __post_init__(self) -> None:
        # Normalise numpy scalars and ints given for areas, so equal knowledge compares,
        # hashes and serialises equal.
        for name in ("min_regions", "max_regions"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral):
                raise ConfigError(f"{name} must be an integer; got {value!r}")
            object.__setattr__(self, name, int(value))
        for name in ("min_area", "max_area"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise ConfigError(f"{name} must be a number; got {value!r}")
            fraction = float(value)
            if not math.isfinite(fraction) or not 0.0 <= fraction <= 1.0:
                raise ConfigError(f"{name} must be a fraction of the image in [0, 1]; got {value}")
            object.__setattr__(self, name, fraction)
        if self.max_regions < 1:
            raise ConfigError(f"max_regions must be at least 1; got {self.max_regions}")
        if not 0 <= self.min_regions <= self.max_regions:
            raise ConfigError(
                f"need 0 <= min_regions <= max_regions; got {self.min_regions}..{self.max_regions}"
            )
        if self.min_area > self.max_area:
            raise ConfigError(
                f"need min_area <= max_area; got min_area={self.min_area}, max_area={self.max_area}"
            )

    def to_dict(self) -> dict[str, int | float]:
        """The four fields as a JSON-ready dict (keys: ``KNOWLEDGE_KEYS``)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> ClassKnowledge:
        """Build from a dict with keys among ``KNOWLEDGE_KEYS``; missing keys take defaults.

        Unknown keys raise ``ConfigError`` (a misspelt key must not silently become a default).
        """
        unknown = sorted(set(data) - set(KNOWLEDGE_KEYS))
        if unknown:
            raise ConfigError(
                f"unknown knowledge keys {unknown}; valid keys: {list(KNOWLEDGE_KEYS)}"
            )
        return cls(**data)  # type: ignore[arg-type]  # field types are checked in __post_init__


PRESETS: dict[str, ClassKnowledge] = {
    "kvasir_seg": ClassKnowledge(min_regions=1, max_regions=3, min_area=0.001, max_area=0.9),
    "ph2": ClassKnowledge(min_regions=1, max_regions=1, min_area=0.01, max_area=1.0),
    "busi": ClassKnowledge(min_regions=0, max_regions=2, min_area=0.002, max_area=0.6),
}


def get_preset(name: str) -> ClassKnowledge:
    """The preset knowledge for a data set name; ``ConfigError`` lists the valid names."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ConfigError(f"unknown knowledge preset {name!r}; valid: {sorted(PRESETS)}") from None
