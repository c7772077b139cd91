"""Import of a zip in the shared data sets' layout: new images with human labels, images
already there get a new label version, a second identical import adds nothing; any bad
entry is a 4xx naming it and nothing is stored."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image as PILImage

from app.runtime import Runtime
from app.settings import Settings
from tests.review_world import truth_mask
from tests.uploads import create_project, png_bytes, real_image, state_snapshot, upload

Entries = dict[str, bytes]


def make_zip(entries: Entries) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def busi(index: int, folder: str = "") -> Entries:
    """images/<name>.png and masks/<name>.png of one BUSI pair (0/255 masks)."""
    image, mask = real_image("busi", index)
    return {
        f"{folder}images/{image.name}": image.read_bytes(),
        f"{folder}masks/{mask.name}": mask.read_bytes(),
    }


def _import(client: TestClient, project_id: int, data: bytes) -> httpx.Response:
    return client.post(f"/api/v1/projects/{project_id}/import", files={"file": ("set.zip", data)})


def _labels(client: TestClient, project_id: int) -> dict[str, list[dict[str, object]]]:
    images = client.get(f"/api/v1/projects/{project_id}/images").json()["data"]
    return {
        image["original_filename"]: client.get(
            f"/api/v1/projects/{project_id}/images/{image['id']}/labels"
        ).json()
        for image in images
    }


def test_import_labels_and_reimport(client: TestClient, runtime: Runtime) -> None:
    project_id = int(create_project(client)["id"])  # type: ignore[call-overload]
    unlabelled = real_image("busi", 2)[0]
    entries = {
        **busi(0, "busi/"),
        **busi(1, "busi/"),
        f"busi/images/{unlabelled.name}": unlabelled.read_bytes(),
    }
    entries["__MACOSX/busi/._x"] = b"junk"  # archiver litter is skipped
    response = _import(client, project_id, make_zip(entries))
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["images_created"], body["labels_created"], body["without_mask"]) == (3, 2, 1)
    assert len(body["job_ids"]) == 3
    labels = _labels(client, project_id)
    assert labels[unlabelled.name] == []
    first = real_image("busi", 0)
    (label,) = labels[first[0].name]
    assert (label["source"], label["version"], label["author"]) == ("human", 1, "root")
    image_id = label["image_id"]
    stored = client.get(f"/api/v1/projects/{project_id}/images/{image_id}/labels/1/mask")
    assert np.array_equal(
        np.asarray(PILImage.open(io.BytesIO(stored.content))), truth_mask(first[1])
    )
    audit = client.get(f"/api/v1/projects/{project_id}/audit").json()["data"]
    assert audit[0]["action"] == "project.import" and audit[0]["details"]["labels_created"] == 2

    again = _import(client, project_id, make_zip(entries)).json()
    assert (again["images_created"], again["images_existing"], again["labels_created"]) == (0, 3, 0)
    assert again["labels_unchanged"] == 2

    # A changed mask for an image already there: a new version, not a second image.
    empty = np.zeros_like(truth_mask(first[1]))
    changed = {
        f"images/{first[0].name}": first[0].read_bytes(),
        f"masks/{first[0].stem}.png": png_bytes(empty),
    }
    third = _import(client, project_id, make_zip(changed)).json()
    assert (third["images_existing"], third["labels_created"]) == (1, 1)
    versions = _labels(client, project_id)[first[0].name]
    assert [v["version"] for v in versions] == [1, 2] and versions[1]["parent_id"] == versions[0][
        "id"
    ]
    assert len(_labels(client, project_id)) == 3


def _with(extra: Entries) -> Callable[[], Entries]:
    return lambda: {**busi(0), **extra}


def _wrong_size_mask() -> Entries:
    entries = busi(0)
    image = real_image("busi", 0)[0]
    entries[f"masks/{image.stem}.png"] = png_bytes(np.zeros((7, 9), np.uint8))
    return entries


def _bad_values_mask() -> Entries:
    entries = busi(0)
    image, mask = real_image("busi", 0)
    values = truth_mask(mask) * 7  # 0/7: not a class of a one-class project
    entries[f"masks/{image.stem}.png"] = png_bytes(values)
    return entries


def _corrupt_image() -> Entries:
    image = real_image("busi", 1)[0]
    return {**busi(0), f"images/{image.name}": image.read_bytes()[:3000]}


def _one_image_two_masks() -> Entries:
    """BUSI image 0 also under another name, with an empty mask there."""
    image, _ = real_image("busi", 0)
    empty = png_bytes(np.zeros_like(truth_mask(real_image("busi", 0)[1])))
    return {**busi(0), "images/copy.png": image.read_bytes(), "masks/copy.png": empty}


BAD_ZIPS: dict[str, tuple[Callable[[], Entries], int, str]] = {
    "path traversal": (
        _with({"images/../../etc/evil.png": b"x"}),
        422,
        "images/../../etc/evil.png",
    ),
    "absolute path": (_with({"/images/evil.png": b"x"}), 422, "/images/evil.png"),
    "backslash": (_with({"images\\evil.png": b"x"}), 422, "evil.png"),
    "mask without image": (_with({"masks/ghost.png": b"x"}), 422, "masks/ghost.png"),
    "stray file": (_with({"notes.txt": b"hello"}), 422, "notes.txt"),
    "nested folder": (_with({"images/a/b.png": b"x"}), 422, "images/a/b.png"),
    "same stem twice": (
        _with({"images/x.png": b"1", "images/x.jpg": b"2"}),
        422,
        "share the name 'x'",
    ),
    "wrong mask size": (_wrong_size_mask, 422, "masks/"),
    "mask values": (_bad_values_mask, 422, "masks/"),
    "corrupt image": (_corrupt_image, 422, "images/"),
    "no images": (lambda: {"readme/": b""}, 422, "no images/"),
    "one image, two masks": (_one_image_two_masks, 422, "same image with different masks"),
}


@pytest.mark.parametrize("case", sorted(BAD_ZIPS))
def test_bad_zip_is_4xx_naming_the_entry_and_changes_nothing(
    client: TestClient, runtime: Runtime, case: str
) -> None:
    project_id = int(create_project(client)["id"])  # type: ignore[call-overload]
    upload(client, project_id, real_image("busi", 0)[0])
    entries, status, named = BAD_ZIPS[case]
    before = state_snapshot(runtime)
    response = _import(client, project_id, make_zip(entries()))
    assert response.status_code == status, response.text
    message = response.json()["error"]["message"]
    assert named in message
    entry = message.split(": ", 1)[0]
    assert f"{entry.rsplit('/', 1)[-1]}: " not in message.removeprefix(f"{entry}: ")  # said once
    assert state_snapshot(runtime) == before


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_zip_limits(client: TestClient, runtime: Runtime, settings: Settings) -> None:
    project_id = int(create_project(client)["id"])  # type: ignore[call-overload]
    before = state_snapshot(runtime)
    not_zip = _import(client, project_id, real_image("busi", 0)[0].read_bytes())
    assert not_zip.status_code == 422 and "not a readable zip" in not_zip.text
    settings.max_import_files = 3
    crowded = _import(client, project_id, make_zip({**busi(0), **busi(1)}))
    assert crowded.status_code == 413 and "4 entries" in crowded.text
    settings.max_import_files = 100
    # Zeros compress about a thousandfold: a small zip that would unpack to 2 MiB.
    bomb = make_zip({**busi(0), "images/bomb.png": bytes(2 * 1024 * 1024)})
    assert len(bomb) < 2 * 1024 * 1024 // 10
    settings.max_import_bytes = 1024 * 1024
    total = _import(client, project_id, bomb)
    assert total.status_code == 413 and "unpacks to" in total.text
    settings.max_import_bytes, settings.max_upload_bytes = 64 * 1024 * 1024, 1024 * 1024
    single = _import(client, project_id, bomb)
    assert single.status_code == 413 and "images/bomb.png" in single.text
    assert state_snapshot(runtime) == before
