"""Bad input gets a 4xx with a JSON error naming the problem, and changes nothing."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.runtime import Runtime
from tests.test_app_round_requests import labeled_project
from tests.uploads import create_project, png_bytes, real_image, state_snapshot, upload


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    body = kind + payload
    return struct.pack(">I", len(payload)) + body + struct.pack(">I", zlib.crc32(body))


def png_bomb(side: int = 30000) -> bytes:
    """A small file that claims side x side grey pixels (a decompression bomb)."""
    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    rows = zlib.compress(b"\x00" * (side + 1) * 64)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", rows)
        + _png_chunk(b"IEND", b"")
    )


def _truncated_png() -> bytes:
    data = real_image("busi", 0)[0].read_bytes()
    return data[: len(data) // 2]


BAD_IMAGES = {
    "truncated png": (lambda: _truncated_png(), "x.png", (422,)),
    "zero bytes": (lambda: b"", "empty.png", (422,)),
    "text named png": (lambda: b"hello, this is not an image\n" * 10, "notes.png", (415,)),
    "30000x30000 png bomb": (lambda: png_bomb(), "bomb.png", (413,)),
}


@pytest.mark.parametrize("case", sorted(BAD_IMAGES))
def test_bad_image_rejected_and_nothing_stored(
    case: str, client: TestClient, runtime: Runtime
) -> None:
    project = create_project(client)
    make, name, statuses = BAD_IMAGES[case]
    before = state_snapshot(runtime)
    response = client.post(
        f"/api/v1/projects/{project['id']}/images", files={"file": (name, make())}
    )
    assert response.status_code in statuses, response.text
    assert response.json()["error"]["message"].startswith(name)  # which file, then why
    assert state_snapshot(runtime) == before


def test_batch_with_one_bad_file_stores_nothing(client: TestClient, runtime: Runtime) -> None:
    project = create_project(client)
    good = real_image("ph2", 3)[0]
    before = state_snapshot(runtime)
    files = [("files", (good.name, good.read_bytes())), ("files", ("bad.png", b"not an image"))]
    response = client.post(f"/api/v1/projects/{project['id']}/images/batch", files=files)
    assert response.status_code == 415
    assert "bad.png" in response.json()["error"]["message"]
    assert state_snapshot(runtime) == before


def _uploaded(client: TestClient) -> tuple[str, tuple[int, int]]:
    project = create_project(client)
    body = upload(client, project["id"], real_image("kvasir_seg", 3)[0])
    image = body["image"]
    url = f"/api/v1/projects/{project['id']}/images/{image['id']}/labels"  # type: ignore[index]
    return url, (image["height"], image["width"])  # type: ignore[index]


@pytest.mark.parametrize("problem", ["wrong size", "bad values", "rgb mask", "not an image"])
def test_bad_mask_rejected_and_nothing_stored(
    problem: str, client: TestClient, runtime: Runtime
) -> None:
    url, (height, width) = _uploaded(client)
    mask = np.zeros((height, width), dtype=np.uint8)
    if problem == "wrong size":
        data = png_bytes(np.zeros((height + 1, width), dtype=np.uint8))
    elif problem == "bad values":
        mask[:10, :10] = 128
        mask[20:30, 20:30] = 255
        data = png_bytes(mask)
    elif problem == "rgb mask":
        rgb = np.zeros((height, width, 3), dtype=np.uint8)
        rgb[:5, :5, 0] = 255
        data = png_bytes(rgb)
    else:
        data = b"definitely not a mask"
    before = state_snapshot(runtime)
    response = client.post(url, files={"file": ("mask.png", data)})
    assert 400 <= response.status_code < 500, response.text
    assert response.json()["error"]["message"]
    assert state_snapshot(runtime) == before


def test_unknown_project_upload_is_404_and_stores_nothing(
    client: TestClient, runtime: Runtime
) -> None:
    before = state_snapshot(runtime)
    path = real_image("ph2", 0)[0]
    response = client.post(
        "/api/v1/projects/999/images", files={"file": (path.name, path.read_bytes())}
    )
    assert response.status_code == 404
    assert state_snapshot(runtime) == before


def test_oversized_upload_is_413(client: TestClient, runtime: Runtime) -> None:
    project = create_project(client)
    runtime.settings.max_upload_bytes = 1000
    before = state_snapshot(runtime)
    path = real_image("ph2", 0)[0]
    response = client.post(
        f"/api/v1/projects/{project['id']}/images", files={"file": (path.name, path.read_bytes())}
    )
    assert response.status_code == 413
    assert state_snapshot(runtime) == before
    assert "1000 bytes" in response.json()["error"]["message"]


MISSPELT_BODIES = {
    "project": ("/api/v1/projects", {"name": "typo", "knowlege": {}}, "knowlege"),
    "token": ("/api/v1/tokens", {"name": "t", "expires": "2030-01-01T00:00:00Z"}, "expires"),
    "user": ("/api/v1/users", {"username": "u1", "password": "x" * 12, "admin": True}, "admin"),
    "accept above": (
        "/api/v1/projects/{project}/review-queue/accept-above",
        {"threshold": 0.99, "include_emtpy": True},
        "include_emtpy",
    ),
}


@pytest.mark.parametrize("case", sorted(MISSPELT_BODIES))
def test_unknown_body_keys_are_named_and_change_nothing(
    case: str, client: TestClient, runtime: Runtime
) -> None:
    project = create_project(client)
    path, body, key = MISSPELT_BODIES[case]
    before = state_snapshot(runtime), client.get("/api/v1/projects").json()
    response = client.post(path.format(project=project["id"]), json=body)
    assert response.status_code == 422, response.text
    assert key in response.json()["error"]["message"]
    assert (state_snapshot(runtime), client.get("/api/v1/projects").json()) == before


def test_a_body_that_is_not_json_is_said_so(client: TestClient, runtime: Runtime) -> None:
    before = state_snapshot(runtime)
    response = client.post(
        "/api/v1/projects", content=b"{name: polyps", headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["error"]["message"].startswith("the request body is not valid JSON (")
    assert state_snapshot(runtime) == before


def test_bad_round_settings_are_422_even_while_a_round_is_active(
    client: TestClient, runtime: Runtime
) -> None:
    project = labeled_project(client)
    url = f"/api/v1/projects/{project['id']}/rounds"
    assert client.post(url, json={}).status_code == 201  # queued: no worker runs here
    before = state_snapshot(runtime)
    refused = client.post(url, json={"model": {"encoder": "resnet9999"}})
    assert refused.status_code == 422 and "resnet9999" in refused.text
    assert client.post(url, json={}).status_code == 409  # a good request waits its turn
    assert state_snapshot(runtime) == before


def test_a_refused_field_is_named_as_a_person_reads_it(client: TestClient) -> None:
    """The message names the field without pydantic's ``body.`` and ``Value error,``; the
    details keep the whole location for programs."""
    project = create_project(client)
    url = f"/api/v1/projects/{project['id']}"
    knowledge = {"polyp": {"min_regions": 3, "max_regions": 1}}
    refused = client.patch(url, json={"knowledge": knowledge}).json()["error"]
    assert refused["message"].startswith("knowledge.polyp: min_regions must not exceed")
    assert refused["details"][0]["loc"][0] == "body"
    listed = client.get(f"{url}/images", params={"limit": -1}).json()["error"]["message"]
    assert listed.startswith("query parameter limit: ")
