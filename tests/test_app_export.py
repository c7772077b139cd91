"""Export of the current labels: COCO JSON whose RLE annotations rebuild each current mask,
and a zip of the stored masks with a provenance manifest; source filter; bad format 422."""

from __future__ import annotations

import csv
import io
import zipfile
from typing import Any, NamedTuple

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image as PILImage
from pycocotools import mask as coco_mask

from app.runtime import Runtime
from app.services.exports import spreadsheet_safe
from tests.review_world import make_round_with_candidates, truth_mask
from tests.test_app_imaging_deidentify import identified_dicom
from tests.uploads import create_project, png_bytes, real_image, upload


class Labelled(NamedTuple):
    project_id: int
    human: int  # two human versions
    machine: int  # an accepted candidate
    edited: int  # an edited candidate
    rejected: int  # no label
    twin: int  # same file name as ``human``, other content
    edit_dice: float


def _post_mask(client: TestClient, project_id: int, image_id: int, mask: np.ndarray) -> None:
    url = f"/api/v1/projects/{project_id}/images/{image_id}/labels"
    assert client.post(url, files={"file": ("m.png", png_bytes(mask))}).status_code == 201


@pytest.fixture
def labelled(client: TestClient, runtime: Runtime) -> Labelled:
    project_id = int(create_project(client, class_names=["polyp"])["id"])  # type: ignore[call-overload]
    base = f"/api/v1/projects/{project_id}"
    pairs = [real_image("kvasir_seg", 20 + i) for i in range(4)]
    ids = [int(upload(client, project_id, path)["image"]["id"]) for path, _ in pairs]  # type: ignore[index]
    masks = [truth_mask(mask) for _, mask in pairs]
    _post_mask(client, project_id, ids[0], np.zeros_like(masks[0]))
    _post_mask(client, project_id, ids[0], masks[0])
    made = make_round_with_candidates(runtime, project_id, ids[1:], [0.9, 0.8, 0.7], masks[1:])
    accept, edit, reject = made.candidate_ids
    assert client.post(f"{base}/candidates/{accept}/accept").status_code == 200
    fixed = masks[2].copy()
    fixed[: fixed.shape[0] // 2] = 0
    edited = client.post(
        f"{base}/candidates/{edit}/edit", files={"file": ("f.png", png_bytes(fixed))}
    )
    assert edited.status_code == 200
    assert (
        client.post(f"{base}/candidates/{reject}/reject", json={"reason": "no"}).status_code == 200
    )
    twin_bytes = real_image("kvasir_seg", 30)[0].read_bytes()
    twin = client.post(f"{base}/images", files={"file": (pairs[0][0].name, twin_bytes)}).json()[
        "image"
    ]["id"]
    shape = client.get(f"{base}/images/{twin}").json()
    twin_mask = np.zeros((shape["height"], shape["width"]), np.uint8)
    twin_mask[10:20, 30:50] = 1
    _post_mask(client, project_id, twin, twin_mask)
    dice = client.get(f"{base}/candidates/{edit}").json()["edit_dice"]
    return Labelled(project_id, ids[0], ids[1], ids[2], ids[3], twin, dice)


def _current_mask(client: TestClient, project_id: int, image_id: int) -> np.ndarray:
    base = f"/api/v1/projects/{project_id}/images/{image_id}/labels"
    version = client.get(f"{base}/current").json()["version"]
    return np.asarray(PILImage.open(io.BytesIO(client.get(f"{base}/{version}/mask").content)))


def _export(client: TestClient, project_id: int, **params: str) -> Any:
    response = client.get(f"/api/v1/projects/{project_id}/export", params=params)
    assert response.status_code == 200, response.text
    return response


# pycocotools' decode (only decode, which the service does not use) warns under NumPy 2.
@pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")
def test_coco_rebuilds_every_current_mask(client: TestClient, labelled: Labelled) -> None:
    coco = _export(client, labelled.project_id, format="coco").json()
    assert coco["categories"] == [{"id": 1, "name": "polyp", "supercategory": ""}]
    images = {image["id"]: image for image in coco["images"]}
    want = [labelled.human, labelled.machine, labelled.edited, labelled.twin]
    assert sorted(images) == sorted(want)  # the rejected image has no label
    assert images[labelled.human]["label_version"] == 2
    assert images[labelled.machine]["label_source"] == "machine"
    assert len({a["id"] for a in coco["annotations"]}) == len(coco["annotations"])
    for image_id in want:
        truth = _current_mask(client, labelled.project_id, image_id)
        rebuilt = np.zeros_like(truth)
        for annotation in (a for a in coco["annotations"] if a["image_id"] == image_id):
            assert annotation["iscrowd"] == 0 and annotation["category_id"] == 1
            region = coco_mask.decode(annotation["segmentation"])
            assert region.shape == truth.shape and annotation["area"] == int(region.sum())
            ys, xs = np.nonzero(region)
            x, y, w, h = annotation["bbox"]
            assert (x, y, x + w, y + h) == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
            assert not (rebuilt & region).any()  # regions do not overlap
            rebuilt |= region
        assert np.array_equal(rebuilt, truth), image_id


def test_masks_zip_with_manifest(client: TestClient, labelled: Labelled) -> None:
    response = _export(client, labelled.project_id, format="masks")
    assert response.headers["content-type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    rows = list(csv.DictReader(io.StringIO(archive.read("manifest.csv").decode())))
    by_image = {int(row["image_id"]): row for row in rows}
    assert set(by_image) == {labelled.human, labelled.machine, labelled.edited, labelled.twin}
    names = [row["mask_file"] for row in rows]
    assert sorted(names) == sorted(n for n in archive.namelist() if n != "manifest.csv")
    human, twin = by_image[labelled.human], by_image[labelled.twin]
    stem = human["filename"].rsplit(".", 1)[0]
    assert human["mask_file"] == f"masks/{stem}.png"
    assert (
        twin["filename"] == human["filename"]
        and twin["mask_file"] == f"masks/{stem}_{labelled.twin}.png"
    )
    assert (human["label_version"], human["source"], human["round"], human["author"]) == (
        "2",
        "human",
        "",
        "root",
    )
    machine, edited = by_image[labelled.machine], by_image[labelled.edited]
    assert (machine["source"], machine["round"], machine["edit_dice"]) == ("machine", "1", "")
    assert machine["candidate_id"] and machine["created_at"]
    assert edited["source"] == "edited"
    assert float(edited["edit_dice"]) == pytest.approx(labelled.edit_dice, abs=1e-6)
    for image_id, row in by_image.items():
        stored = np.asarray(PILImage.open(io.BytesIO(archive.read(row["mask_file"]))))
        assert np.array_equal(stored, _current_mask(client, labelled.project_id, image_id))


def test_source_filter_and_bad_parameters(client: TestClient, labelled: Labelled) -> None:
    for source, image_id in (("machine", labelled.machine), ("edited", labelled.edited)):
        coco = _export(client, labelled.project_id, format="coco", source=source).json()
        assert [image["id"] for image in coco["images"]] == [image_id]
    zipped = _export(client, labelled.project_id, format="masks", source="human")
    rows = zipfile.ZipFile(io.BytesIO(zipped.content)).read("manifest.csv").decode().splitlines()
    assert len(rows) == 3  # header, the human image and its twin
    url = f"/api/v1/projects/{labelled.project_id}/export"
    with_images = {"format": "coco", "include_images": "true"}  # refused, not ignored
    for params in ({"format": "yolo"}, {}, {"format": "coco", "source": "robot"}, with_images):
        response = client.get(url, params=params)
        assert response.status_code == 422, params
        assert response.json()["error"]["message"]
    assert client.get("/api/v1/projects/999/export", params={"format": "coco"}).status_code == 404


@pytest.mark.parametrize(
    ("text", "safe"),
    [
        ("=HYPERLINK(1).png", "'=HYPERLINK(1).png"),
        ("+1.png", "'+1.png"),
        ("-cmd.png", "'-cmd.png"),
        ("@sum.png", "'@sum.png"),
        ("\tx.png", "'\tx.png"),
        ("k=1.png", "k=1.png"),
        ("case_0001.png", "case_0001.png"),
    ],
)
def test_manifest_text_never_starts_a_spreadsheet_formula(text: str, safe: str) -> None:
    assert spreadsheet_safe(text) == safe


def test_masks_with_their_images_import_into_another_project(
    client: TestClient, labelled: Labelled
) -> None:
    """The round trip a user moving a data set between servers or projects makes."""
    response = _export(client, labelled.project_id, format="masks", include_images="true")
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    images = sorted(n for n in archive.namelist() if n.startswith("images/"))
    masks = sorted(n for n in archive.namelist() if n.startswith("masks/"))
    stems = [n.split("/", 1)[1].rsplit(".", 1)[0] for n in images]
    assert stems == [n.removeprefix("masks/").removesuffix(".png") for n in masks]
    assert all(name.endswith(".jpg") for name in images)  # Kvasir-SEG's own extension
    other = int(create_project(client, name="copy", class_names=["polyp"])["id"])  # type: ignore[call-overload]
    imported = client.post(
        f"/api/v1/projects/{other}/import", files={"file": ("labels.zip", response.content)}
    )
    assert imported.status_code == 200, imported.text
    counts = imported.json()
    assert (counts["images_created"], counts["labels_created"]) == (4, 4)
    exported_again = zipfile.ZipFile(io.BytesIO(_export(client, other, format="masks").content))
    for name in masks:
        assert exported_again.read(name) == archive.read(name), name
    # without the images (the default) the zip holds masks and the manifest only
    plain = zipfile.ZipFile(
        io.BytesIO(_export(client, labelled.project_id, format="masks").content)
    )
    assert not any(n.startswith("images/") for n in plain.namelist())


def _identified_project(client: TestClient) -> tuple[int, list[int]]:
    """A project holding a DICOM full of patient details and a JPEG named after the patient,
    both labelled."""
    project_id = int(create_project(client, name="identified", class_names=["lesion"])["id"])  # type: ignore[call-overload]
    base = f"/api/v1/projects/{project_id}"
    pixels = (np.arange(48 * 64, dtype=np.uint16).reshape(48, 64) * 13).astype(np.uint16)
    dicom = identified_dicom(pixels, study="1.2.826.0.1.3680043.9.7")
    jpeg = real_image("kvasir_seg", 3)[0].read_bytes()
    ids = []
    for name, data in (("DOE_JANE_1961.dcm", dicom), ("jane doe MRN-0042137.jpg", jpeg)):
        made = client.post(f"{base}/images", files={"file": (name, data)})
        assert made.status_code == 201, made.text
        image = made.json()["image"]
        mask = np.zeros((image["height"], image["width"]), np.uint8)
        mask[5:20, 10:30] = 1
        _post_mask(client, project_id, image["id"], mask)
        ids.append(int(image["id"]))
    return project_id, ids


def test_a_deidentified_export_names_no_patient_and_still_imports(client: TestClient) -> None:
    project_id, ids = _identified_project(client)
    response = _export(client, project_id, format="masks", include_images="true", deidentify="true")
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    assert sorted(archive.namelist()) == sorted([
        f"images/image-{ids[0]}.dcm", f"images/image-{ids[1]}.jpg",
        f"masks/image-{ids[0]}.png", f"masks/image-{ids[1]}.png", "manifest.csv",
    ])  # fmt: skip
    for name in archive.namelist():
        content = archive.read(name).lower()
        for secret in (b"doe", b"jane", b"0042137", b"19610317", b"1.2.826.0.1.3680043.9.7"):
            assert secret not in content, (name, secret)
    manifest = list(csv.DictReader(io.StringIO(archive.read("manifest.csv").decode())))
    assert [row["filename"] for row in manifest] == [f"image-{ids[0]}.dcm", f"image-{ids[1]}.jpg"]
    other = int(create_project(client, name="shared", class_names=["lesion"])["id"])  # type: ignore[call-overload]
    imported = client.post(
        f"/api/v1/projects/{other}/import", files={"file": ("d.zip", response.content)}
    )
    assert imported.status_code == 200, imported.text
    assert (imported.json()["images_created"], imported.json()["labels_created"]) == (2, 2)
    listed = client.get(f"/api/v1/projects/{other}/images", params={"sort": "id"}).json()
    copies = [int(image["id"]) for image in listed["data"]]
    for original, copy in zip(ids, copies, strict=True):
        assert (
            _current_mask(client, other, copy) == _current_mask(client, project_id, original)
        ).all()
    coco = _export(client, project_id, format="coco", deidentify="true").json()
    assert [image["file_name"] for image in coco["images"]] == [
        f"image-{ids[0]}.dcm",
        f"image-{ids[1]}.jpg",
    ]
    # Without deidentify nothing changes: the names and files as uploaded.
    plain = zipfile.ZipFile(io.BytesIO(_export(client, project_id, format="masks").content))
    assert b"DOE_JANE_1961.dcm" in plain.read("manifest.csv")


def test_an_image_with_burned_in_text_stops_a_deidentified_export(client: TestClient) -> None:
    project_id, _ = _identified_project(client)
    burned = identified_dicom(np.zeros((16, 16), np.uint8), study="1.2.3", BurnedInAnnotation="YES")
    made = client.post(
        f"/api/v1/projects/{project_id}/images", files={"file": ("scan.dcm", burned)}
    ).json()["image"]
    _post_mask(client, project_id, made["id"], np.ones((16, 16), np.uint8))
    url = f"/api/v1/projects/{project_id}/export"
    params = {"format": "masks", "include_images": "true", "deidentify": "true"}
    refused = client.get(url, params=params)
    assert refused.status_code == 409, refused.text
    error = refused.json()["error"]
    assert error["code"] == "not_deidentifiable" and error["details"] == {"image_id": made["id"]}
    assert "burned into the pixels" in error["message"]
    # Masks alone carry no image metadata, so they still export under new names.
    masks_only = client.get(url, params={"format": "masks", "deidentify": "true"})
    assert masks_only.status_code == 200
