"""Class masks as COCO annotations: one per connected region of each class, its segmentation
as run-length encoding (pycocotools), with the area and box pycocotools computes from it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
from pycocotools import mask as coco_mask
from scipy import ndimage

_EIGHT_CONNECTED = np.ones((3, 3), dtype=bool)


def categories(class_names: list[str]) -> list[dict[str, Any]]:
    """Category ids are the class indices of the masks (1..C; 0 is background)."""
    return [{"id": i, "name": name, "supercategory": ""} for i, name in enumerate(class_names, 1)]


def region_annotations(mask: np.ndarray, num_classes: int) -> Iterator[dict[str, Any]]:
    """COCO annotations (without ``id`` and ``image_id``) of an H x W uint8 class mask.

    Regions are 8-connected, so together they cover the mask exactly; an empty mask has none.
    """
    for class_index in range(1, num_classes + 1):
        regions, _ = ndimage.label(mask == class_index, structure=_EIGHT_CONNECTED)
        for region, box in enumerate(ndimage.find_objects(regions), start=1):
            # Compare only inside the region's box: noisy masks can have thousands of regions.
            single = np.zeros(mask.shape, dtype=np.uint8, order="F")
            single[box] = regions[box] == region
            rle = coco_mask.encode(single)
            yield {
                "category_id": class_index,
                "segmentation": {"size": rle["size"], "counts": rle["counts"].decode("ascii")},
                "area": int(coco_mask.area(rle)),
                "bbox": [float(v) for v in coco_mask.toBbox(rle)],
                "iscrowd": 0,
            }
