"""The COCO side of an import: a zip holding one COCO JSON file (as SamDSK's own ``coco``
export, CVAT's "COCO 1.0" and most tools write) and the image files it lists.

Each listed image is found in the zip by its ``file_name``: the path from the JSON file's
folder, from the zip's root, or else its base name where that is unique. Categories map to the
project's classes by name (ignoring case). An image's annotations are drawn into one class
mask in the order the file gives them (where regions of two classes overlap, the later one
wins); polygons, RLE and compressed RLE segmentations are all read by pycocotools. An image
the file lists without annotations arrives unlabeled: COCO cannot tell "nothing here" from
"not labelled yet".
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Annotated, Any

import numpy as np
import numpy.typing as npt
from pycocotools import mask as coco_mask
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from app.errors import InvalidInput

Count = Annotated[int, Field(ge=1)]


class _Loose(BaseModel):
    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)


class _Image(_Loose):
    id: int
    file_name: str = Field(min_length=1)
    width: Count | None = None
    height: Count | None = None


class _Category(_Loose):
    id: int
    name: str


class _Rle(_Loose):
    size: tuple[Count, Count]
    counts: str | list[Annotated[int, Field(ge=0)]]


class _Annotation(_Loose):
    image_id: int
    category_id: int
    segmentation: Any  # checked by _segmentation, which says what is wrong with it


class _Coco(_Loose):
    images: list[_Image]
    categories: list[_Category]
    annotations: list[_Annotation] = []


@dataclass(frozen=True)
class Drawing:
    """What one image's mask is drawn from: (class index, segmentation) in file order, and
    the size the file says the image has, if it says."""

    regions: tuple[tuple[int, Any], ...]
    width: int | None
    height: int | None


def is_coco_file(name: str) -> bool:
    return name.lower().endswith(".json")


def read_coco(
    data: bytes, *, entry: str, files: list[str], class_names: list[str]
) -> dict[str, Drawing]:
    """Zip entry of each image the COCO file ``entry`` lists -> its drawing (without regions
    where it has no annotations). ``files`` are the zip's other entries; every one must be a
    listed image."""
    try:
        coco = _Coco.model_validate(json.loads(data))
    except (ValueError, ValidationError, RecursionError) as exc:  # deep nesting: the last
        raise InvalidInput(f"{entry}: not a COCO file this import reads: {_first(exc)}") from exc
    classes = _class_of_category(coco.categories, class_names, entry)
    sizes = {image.id: (image.width, image.height) for image in coco.images}
    found = _image_entries(coco.images, entry, files)
    unlisted = sorted(set(files) - set(found.values()))
    if unlisted:
        raise InvalidInput(f"{unlisted[0]}: not an image that {entry} lists")
    regions: dict[int, list[tuple[int, Any]]] = defaultdict(list)
    for index, annotation in enumerate(coco.annotations):
        if annotation.image_id not in found:
            raise InvalidInput(f"{entry}: annotations[{index}] is of an image it does not list")
        if annotation.category_id not in classes:
            raise InvalidInput(f"{entry}: annotations[{index}] has an unknown category_id")
        shape = _segmentation(annotation.segmentation, f"{entry}: annotations[{index}]")
        regions[annotation.image_id].append((classes[annotation.category_id], shape))
    return {
        found[image.id]: Drawing(tuple(regions[image.id]), *sizes[image.id])
        for image in coco.images
    }


def _segmentation(value: Any, where: str) -> dict[str, Any] | list[list[float]]:
    """An RLE (``{"size", "counts"}``) or polygons (lists of x, y pairs), checked."""
    if isinstance(value, dict):
        try:
            return _Rle.model_validate(value).model_dump()
        except ValidationError as exc:
            raise InvalidInput(f"{where}.segmentation is not a valid RLE: {_first(exc)}") from exc
    if not isinstance(value, list) or not value:
        raise InvalidInput(f"{where}.segmentation must be an RLE or a non-empty list of polygons")
    for polygon in value:
        numbers = isinstance(polygon, list) and all(_finite(v) for v in polygon)
        if not numbers or len(polygon) < 6 or len(polygon) % 2:
            raise InvalidInput(
                f"{where}.segmentation: a polygon is a list of finite x, y coordinates, an "
                "even number of them and at least 6 (3 points)"
            )
    return value


def _finite(value: object) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        return math.isfinite(float(value))
    except OverflowError:  # an integer of hundreds of digits
        return False


def draw_mask(
    drawing: Drawing, *, width: int, height: int, entry: str
) -> npt.NDArray[np.uint8] | None:
    """The class mask of ``drawing`` on a ``width`` x ``height`` image named ``entry``; None
    for an image the file lists without annotations (it arrives unlabeled)."""
    said = (drawing.width or width, drawing.height or height)
    if said != (width, height):
        raise InvalidInput(
            f"{entry}: the COCO file says {said[0]}x{said[1]}, the image is {width}x{height}"
        )
    if not drawing.regions:
        return None
    # Column by column, as COCO's runs go: each region paints its runs only, so a file of many
    # small regions costs their size, not the image's size times their number.
    mask = np.zeros((height, width), dtype=np.uint8, order="F")
    flat = mask.ravel(order="F")  # a view of the same pixels
    for class_index, segmentation in drawing.regions:
        for counts in _region_runs(segmentation, height, width, entry):
            _paint_runs(flat, counts, class_index)
    return np.ascontiguousarray(mask)


def _region_runs(segmentation: Any, height: int, width: int, entry: str) -> list[list[int]]:
    """The runs (alternately outside and inside, column by column) of a region's parts."""
    if not isinstance(segmentation, dict):  # polygons: pycocotools rasterises them to RLE
        _check_reach(segmentation, height, width, entry)
        rles = coco_mask.frPyObjects(segmentation, height, width)
        return [rle_counts(rle["counts"].decode("ascii"), entry) for rle in rles]
    size = segmentation["size"]
    if tuple(size) != (height, width):
        raise InvalidInput(
            f"{entry}: an RLE segmentation of {size[1]}x{size[0]} on a {width}x{height} image"
        )
    counts = segmentation["counts"]
    if isinstance(counts, str):
        counts = rle_counts(counts, entry)
    if sum(counts) != height * width or min(counts, default=0) < 0:
        raise InvalidInput(f"{entry}: an RLE segmentation whose runs do not cover the image")
    return [counts]


def _paint_runs(flat: npt.NDArray[np.uint8], counts: list[int], value: int) -> None:
    ends = np.cumsum(counts)
    for index in range(1, len(counts), 2):  # the odd runs are inside
        flat[ends[index] - counts[index] : ends[index]] = value


# How long a polygon's outline may be, in multiples of the image's width plus height: a
# contour traced pixel by pixel around a ragged lesion stays far below it.
MAX_OUTLINE = 50


def _check_reach(polygons: list[list[float]], height: int, width: int, entry: str) -> None:
    """Points may lie outside the image (a region cut by its edge), but not far, and the
    outline may not be endless: pycocotools allocates by outline length, and crashes the
    process on coordinates in the billions or zigzags of millions of pixels."""
    for polygon in polygons:
        xs, ys = np.asarray(polygon[0::2]), np.asarray(polygon[1::2])
        if xs.min() < -width or xs.max() > 2 * width or ys.min() < -height or ys.max() > 2 * height:
            raise InvalidInput(
                f"{entry}: a polygon reaches far outside the {width}x{height} image "
                f"(x {xs.min():g} to {xs.max():g}, y {ys.min():g} to {ys.max():g})"
            )
        steps = np.maximum(np.abs(np.diff(xs, append=xs[0])), np.abs(np.diff(ys, append=ys[0])))
        if steps.sum() > MAX_OUTLINE * (width + height):
            raise InvalidInput(
                f"{entry}: a polygon's outline is {steps.sum():.0f} pixels long, more than "
                f"{MAX_OUTLINE} times the {width}x{height} image's width plus height"
            )


def rle_counts(text: str, entry: str) -> list[int]:
    """The runs of a compressed RLE string (COCO's LEB128-like code, as pycocotools'
    ``rleFrString`` reads it: 5 bits a character, offset by '0', later runs relative to the
    one two before)."""
    counts: list[int] = []
    position = 0
    while position < len(text):
        value, shift, more = 0, 0, True
        while more:
            if position >= len(text) or not 0 <= ord(text[position]) - 48 < 64:
                raise InvalidInput(f"{entry}: a compressed RLE string that is cut off or corrupt")
            code = ord(text[position]) - 48
            value |= (code & 0x1F) << shift
            more = bool(code & 0x20)
            position += 1
            shift += 5
            if shift > 70:  # no image has a run beyond 64 bits; this would only cost time
                raise InvalidInput(f"{entry}: a compressed RLE run longer than 64 bits")
            if not more and code & 0x10:
                value |= -1 << shift
        if len(counts) > 2:
            value += counts[-2]
        counts.append(value)
    return counts


def _class_of_category(
    categories: list[_Category], class_names: list[str], entry: str
) -> dict[int, int]:
    ids = [category.id for category in categories]
    if len(ids) != len(set(ids)):
        twice = sorted({i for i in ids if ids.count(i) > 1})
        raise InvalidInput(f"{entry}: category id {twice[0]} is given to two categories")
    index = {name.casefold(): i for i, name in enumerate(class_names, 1)}
    unknown = sorted({c.name for c in categories if c.name.casefold() not in index})
    if unknown:
        raise InvalidInput(
            f"{entry}: categories {', '.join(map(repr, unknown))} are not classes of this "
            f"project ({', '.join(class_names)})"
        )
    return {category.id: index[category.name.casefold()] for category in categories}


def _image_entries(images: list[_Image], entry: str, files: list[str]) -> dict[int, str]:
    """COCO image id -> the zip entry holding its file."""
    here = PurePosixPath(entry).parent
    present = set(files)
    by_base: dict[str, list[str]] = defaultdict(list)
    for name in files:
        by_base[PurePosixPath(name).name].append(name)
    found: dict[int, str] = {}
    owner: dict[str, int] = {}
    for image in images:
        name = image.file_name.replace("\\", "/").lstrip("/")
        tried = [str(here / name), name]
        match = next((path for path in tried if path in present), None)
        if match is None:
            bases = by_base.get(PurePosixPath(name).name, [])
            if len(bases) > 1:
                raise InvalidInput(f"{entry}: {image.file_name} matches {', '.join(bases)}")
            if not bases:
                raise InvalidInput(f"{entry} lists {image.file_name}, which the zip does not hold")
            match = bases[0]
        if image.id in found or match in owner:
            raise InvalidInput(f"{entry}: {image.file_name} (id {image.id}) is listed twice")
        found[image.id], owner[match] = match, image.id
    return found


def _first(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"])
        return f"{where}: {error['msg']}" if where else str(error["msg"])
    return str(exc)
