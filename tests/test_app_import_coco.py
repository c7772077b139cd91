"""Import of a COCO JSON file with its images: SamDSK's own coco export imports back exactly,
a CVAT-style layout with polygons is drawn, and every problem is a 422 naming it, with
nothing stored."""

from __future__ import annotations

import io
import json
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image as PILImage
from pycocotools import mask as coco_mask

from app.runtime import Runtime
from app.services.coco_import import rle_counts
from tests.review_world import truth_mask
from tests.test_app_import import _import, make_zip
from tests.uploads import create_project, png_bytes, real_image, state_snapshot


def _project(client: TestClient, name: str, classes: list[str] | None = None) -> int:
    return int(create_project(client, name=name, class_names=classes or ["polyp"])["id"])  # type: ignore[call-overload]


def _masks_by_name(client: TestClient, project_id: int) -> dict[str, np.ndarray | None]:
    base = f"/api/v1/projects/{project_id}/images"
    found: dict[str, np.ndarray | None] = {}
    for image in client.get(base).json()["data"]:
        current = client.get(f"{base}/{image['id']}/labels/current")
        if current.status_code == 404:
            found[image["original_filename"]] = None
            continue
        mask = client.get(f"{base}/{image['id']}/labels/{current.json()['version']}/mask")
        found[image["original_filename"]] = np.asarray(PILImage.open(io.BytesIO(mask.content)))
    return found


def test_a_coco_export_with_its_images_imports_back_exactly(client: TestClient) -> None:
    source = _project(client, "source")
    images = {}
    for index in range(3):
        image, mask = real_image("kvasir_seg", 40 + index)
        made = client.post(
            f"/api/v1/projects/{source}/images", files={"file": (image.name, image.read_bytes())}
        ).json()["image"]
        if index < 2:  # the third stays unlabelled
            url = f"/api/v1/projects/{source}/images/{made['id']}/labels"
            labelled = client.post(url, files={"file": ("m.png", png_bytes(truth_mask(mask)))})
            assert labelled.status_code == 201
        images[image.name] = image.read_bytes()
    coco = client.get(f"/api/v1/projects/{source}/export", params={"format": "coco"}).content
    target = _project(client, "target", ["Polyp"])  # categories match classes ignoring case
    entries = {"labels.json": coco, **{f"images/{name}": data for name, data in images.items()}}
    # The export lists labelled images only: the unlabelled one is not in it.
    refused = _import(client, target, make_zip(entries))
    assert refused.status_code == 422 and "not an image that labels.json lists" in refused.text
    del entries[f"images/{real_image('kvasir_seg', 42)[0].name}"]
    imported = _import(client, target, make_zip(entries))
    assert imported.status_code == 200, imported.text
    assert imported.json()["images_created"] == imported.json()["labels_created"] == 2
    expected = _masks_by_name(client, source)
    got = _masks_by_name(client, target)
    assert set(got) == {name for name, mask in expected.items() if mask is not None}
    for name, mask in got.items():
        np.testing.assert_array_equal(mask, expected[name])
    again = _import(client, target, make_zip(entries)).json()
    assert (again["images_created"], again["labels_created"], again["labels_unchanged"]) == (
        0, 0, 2,
    )  # fmt: skip


def _cvat_set(width: int, height: int) -> tuple[dict[str, Any], dict[str, bytes]]:
    """CVAT's COCO 1.0 layout: annotations/instances_default.json and images/."""
    image, _ = real_image("busi", 5)
    coco = {
        "licenses": [], "info": {},
        "categories": [{"id": 1, "name": "tumor", "supercategory": ""},
                       {"id": 2, "name": "cyst", "supercategory": ""}],
        "images": [{"id": 7, "file_name": image.name, "width": width, "height": height}],
        "annotations": [
            {"id": 1, "image_id": 7, "category_id": 1, "iscrowd": 0,
             "segmentation": [[10, 10, 60, 10, 60, 40, 10, 40]]},
            {"id": 2, "image_id": 7, "category_id": 2, "iscrowd": 0,  # over the first
             "segmentation": [[40, 20, 80, 20, 80, 50, 40, 50]]},
        ],
    }  # fmt: skip
    return coco, {f"images/{image.name}": image.read_bytes()}


def _size(data: bytes) -> tuple[int, int]:
    return PILImage.open(io.BytesIO(data)).size


def test_cvat_polygons_are_drawn_later_over_earlier(client: TestClient) -> None:
    project_id = _project(client, "ultrasound", ["tumor", "cyst"])
    _, files = _cvat_set(1, 1)
    width, height = _size(next(iter(files.values())))
    coco, files = _cvat_set(width, height)
    entries = {"annotations/instances_default.json": json.dumps(coco).encode(), **files}
    imported = _import(client, project_id, make_zip(entries))
    assert imported.status_code == 200, imported.text
    (mask,) = _masks_by_name(client, project_id).values()
    assert mask is not None
    assert mask[25, 20] == 1 and mask[30, 70] == 2 and mask[30, 50] == 2  # cyst drawn last
    assert mask[5, 5] == 0 and mask[45, 20] == 0
    assert 30 * 50 * 0.9 < (mask == 1).sum() + (mask[10:41, 40:61] == 2).sum() < 31 * 51 * 1.1


def _rle(mask: np.ndarray) -> dict[str, Any]:
    encoded = coco_mask.encode(np.asfortranarray(mask))
    return {"size": encoded["size"], "counts": encoded["counts"].decode()}


@pytest.mark.parametrize(
    ("change", "said"),
    [
        (lambda c, w, h: c["categories"].append({"id": 3, "name": "mass"}), "'mass' are not"),
        (lambda c, w, h: c["images"][0].update(file_name="other.png"), "does not hold"),
        (lambda c, w, h: c["images"][0].update(width=w + 1), "the COCO file says"),
        (lambda c, w, h: c["annotations"][0].update(image_id=99), "of an image it does not"),
        (lambda c, w, h: c["annotations"][0].update(category_id=9), "unknown category_id"),
        (lambda c, w, h: c["annotations"][0].update(segmentation=[[1, 2, 3]]), "segmentation"),
        (
            lambda c, w, h: c["annotations"][0].update(segmentation=[[1, 2, 3, 4, 5, "x"]]),
            "segmentation",
        ),
        (
            lambda c, w, h: c["annotations"][0].update(
                segmentation=_rle(np.ones((h, w + 1), np.uint8))
            ),
            "an RLE segmentation of",
        ),
        (
            lambda c, w, h: c["annotations"][0].update(
                segmentation={"size": [h, w], "counts": [5, 7]}
            ),
            "runs do not cover the image",
        ),
        (
            lambda c, w, h: c["annotations"][0].update(
                segmentation={"size": [h, w], "counts": "P" * 9 + "\u00ff"}
            ),
            "cut off or corrupt",
        ),
        (lambda c, w, h: c.pop("images"), "images: Field required"),
        (
            lambda c, w, h: c["annotations"][0].update(segmentation=[[0, 0, 3e9, 0, 3e9, 3e9]]),
            "reaches far outside",
        ),
        (lambda c, w, h: c["annotations"][0].update(segmentation=[]), "non-empty list"),
        (
            lambda c, w, h: c["annotations"][0].update(segmentation=[[0, 0, 10, 0, 10, 10, 5]]),
            "an even number",
        ),
        (
            lambda c, w, h: c["annotations"][0].update(
                segmentation=[[0, 0, 9, 0, float("nan"), 9]]
            ),
            "finite",
        ),
        (lambda c, w, h: c["categories"][1].update(id=1), "category id 1 is given to two"),
        (
            lambda c, w, h: c["annotations"][0].update(
                segmentation=[[v for i in range(2000) for v in (-w if i % 2 else 2 * w, i % h)]]
            ),
            "outline is",
        ),
        (
            lambda c, w, h: c["annotations"][0].update(
                segmentation={"size": [h, w], "counts": "o" * 40 + "0"}
            ),
            "longer than 64 bits",
        ),
        (
            lambda c, w, h: c["annotations"][0].update(segmentation=[[10**400, 0, 1, 1, 2, 2]]),
            "finite",
        ),
        (
            lambda c, w, h: (c.update(annotations=[]), c["images"][0].update(height=h + 2)),
            "the COCO file says",
        ),
    ],
)
def test_a_bad_coco_file_is_a_422_naming_it_and_stores_nothing(
    client: TestClient, runtime: Runtime, change: Any, said: str
) -> None:
    project_id = _project(client, "checked", ["tumor", "cyst"])
    _, files = _cvat_set(1, 1)
    width, height = _size(next(iter(files.values())))
    coco, files = _cvat_set(width, height)
    change(coco, width, height)
    before = state_snapshot(runtime)
    entries = {"set/labels.json": json.dumps(coco).encode()}
    entries.update({f"set/{name}": data for name, data in files.items()})
    refused = _import(client, project_id, make_zip(entries))
    assert refused.status_code == 422, refused.text
    assert said in refused.json()["error"]["message"]
    assert state_snapshot(runtime) == before


def test_compressed_rle_runs_are_read_as_pycocotools_writes_them() -> None:
    rng = np.random.default_rng(3)
    for _ in range(20):
        mask = (rng.random((23, 41)) < rng.random()).astype(np.uint8)
        runs = rle_counts(_rle(mask)["counts"], "x")
        decoded = np.repeat(np.arange(len(runs)) % 2, runs).reshape(41, 23).T  # column-major
        np.testing.assert_array_equal(decoded, mask)


def test_a_masks_zip_with_a_stray_json_is_still_read_as_masks(client: TestClient) -> None:
    project_id = _project(client, "kvasir")
    image, mask = real_image("kvasir_seg", 44)
    entries = {
        f"images/{image.name}": image.read_bytes(),
        f"masks/{mask.name}": mask.read_bytes(),
        "kavsir_bboxes.json": b"{}",
    }
    refused = _import(client, project_id, make_zip(entries))
    assert refused.status_code == 422 and "kavsir_bboxes.json: expected images/" in refused.text
    two = {"a.json": b"{}", "b.json": b"{}", f"images/{image.name}": image.read_bytes()}
    several = _import(client, project_id, make_zip(two))
    assert several.status_code == 422 and "several COCO files" in several.text


def test_a_coco_file_nested_beyond_reason_is_a_422(client: TestClient, runtime: Runtime) -> None:
    project_id = _project(client, "nested")
    _, files = _cvat_set(1, 1)
    before = state_snapshot(runtime)
    nested = b'{"images": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    refused = _import(client, project_id, make_zip({"labels.json": nested, **files}))
    assert refused.status_code == 422 and "not a COCO file" in refused.text
    assert state_snapshot(runtime) == before
