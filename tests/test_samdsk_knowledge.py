"""Image-level knowledge: validation, serialisation and the data-set presets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from samdsk.errors import ConfigError
from samdsk.knowledge import KNOWLEDGE_KEYS, PRESETS, ClassKnowledge, get_preset

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def test_defaults_mean_exactly_one_region_of_any_size() -> None:
    assert ClassKnowledge() == ClassKnowledge(1, 1, 0.0, 1.0)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"min_regions": -1, "max_regions": 2}, "min_regions <= max_regions"),
        ({"min_regions": 3, "max_regions": 2}, "min_regions <= max_regions"),
        ({"min_regions": 0, "max_regions": 0}, "max_regions must be at least 1"),
        ({"min_regions": 1.5}, "integer"),
        ({"max_regions": True}, "integer"),
        ({"min_area": -0.1}, r"\[0, 1\]"),
        ({"max_area": 1.2}, r"\[0, 1\]"),
        ({"min_area": float("nan")}, r"\[0, 1\]"),
        ({"min_area": "0.1"}, "number"),
        ({"min_area": 0.6, "max_area": 0.5}, "min_area <= max_area"),
    ],
)
def test_invalid_knowledge_is_refused(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ClassKnowledge(**fields)  # type: ignore[arg-type]


def test_dict_round_trip_and_key_names() -> None:
    knowledge = ClassKnowledge(min_regions=0, max_regions=2, min_area=0.002, max_area=0.6)
    data = knowledge.to_dict()
    assert tuple(data) == KNOWLEDGE_KEYS == ("min_regions", "max_regions", "min_area", "max_area")
    assert data == {"min_regions": 0, "max_regions": 2, "min_area": 0.002, "max_area": 0.6}
    assert ClassKnowledge.from_dict(data) == knowledge


def test_from_dict_fills_defaults_and_refuses_unknown_keys() -> None:
    assert ClassKnowledge.from_dict({"max_regions": 3}) == ClassKnowledge(1, 3)
    with pytest.raises(ConfigError, match="max_region"):
        ClassKnowledge.from_dict({"max_region": 3})
    with pytest.raises(ConfigError, match="integer"):
        ClassKnowledge.from_dict({"max_regions": "3"})


def test_numpy_scalars_and_integer_areas_are_normalised() -> None:
    knowledge = ClassKnowledge(np.int64(0), np.int32(2), 0, np.float32(0.5))  # type: ignore[arg-type]
    assert knowledge == ClassKnowledge(0, 2, 0.0, 0.5)
    assert [type(v) for v in knowledge.to_dict().values()] == [int, int, float, float]


def test_presets_follow_the_data_sets() -> None:
    counts = {name: (k.min_regions, k.max_regions) for name, k in PRESETS.items()}
    assert counts == {"kvasir_seg": (1, 3), "ph2": (1, 1), "busi": (0, 2)}
    assert get_preset("ph2") is PRESETS["ph2"]
    with pytest.raises(ConfigError, match="busi"):
        get_preset("isic")


@pytest.mark.skipif(not DATA.is_dir(), reason="shared data folder missing")
@pytest.mark.parametrize("name", sorted(PRESETS))
def test_preset_area_bounds_cover_real_lesions(name: str) -> None:
    """Every lesion region (ignoring specks under 0.1% of the image) of every 10th mask."""
    knowledge = PRESETS[name]
    for path in sorted((DATA / name / "masks").glob("*.png"))[::10]:
        mask = np.asarray(Image.open(path).convert("L")) > 127
        labels, count = ndimage.label(mask)
        fractions = np.bincount(labels.ravel(), minlength=count + 1)[1:] / mask.size
        for fraction in fractions[fractions >= 0.001]:
            assert knowledge.min_area <= fraction <= knowledge.max_area, (path.name, fraction)
