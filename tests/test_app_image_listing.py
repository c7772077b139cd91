"""The image listing's filters and orders, as a tool finds its way around a project: the
unlabeled images, those waiting for review, those of one label source, a file by name or by
its hash. On SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib

from fastapi.testclient import TestClient

from app.runtime import Runtime
from tests.review_world import make_round_with_candidates, truth_mask
from tests.uploads import create_project, real_image, upload


def _world(client: TestClient, runtime: Runtime) -> tuple[str, dict[str, int]]:
    """Five Kvasir-SEG images: a human label, an accepted machine label, a pending
    candidate, a rejected candidate (unlabeled), and one untouched."""
    project_id = int(create_project(client)["id"])  # type: ignore[call-overload]
    base = f"/api/v1/projects/{project_id}"
    names = ["human", "machine", "pending", "rejected", "untouched"]
    ids, masks = {}, {}
    for index, name in enumerate(names):
        image_path, mask_path = real_image("kvasir_seg", 50 + index)
        ids[name] = int(upload(client, project_id, image_path)["image"]["id"])  # type: ignore[index]
        masks[name] = truth_mask(mask_path)
    human = f"{base}/images/{ids['human']}/labels"
    mask = real_image("kvasir_seg", 50)[1].read_bytes()
    assert client.post(human, files={"file": ("m.png", mask)}).is_success
    reviewed = names[1:4]
    made = make_round_with_candidates(
        runtime,
        project_id,
        [ids[n] for n in reviewed],
        [0.9, 0.8, 0.7],
        [masks[n] for n in reviewed],
    )
    machine, _, rejected = made.candidate_ids
    assert client.post(f"{base}/candidates/{machine}/accept").is_success
    assert client.post(f"{base}/candidates/{rejected}/reject", json={"reason": "x"}).is_success
    return f"{base}/images", ids


def _ids(client: TestClient, url: str, **params: object) -> list[int]:
    answer = client.get(url, params=params)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["count"] == len(body["data"])
    return [image["id"] for image in body["data"]]


def test_filters_by_label_and_review(client: TestClient, runtime: Runtime) -> None:
    url, ids = _world(client, runtime)
    assert _ids(client, url, label="none") == [ids["pending"], ids["rejected"], ids["untouched"]]
    assert _ids(client, url, label="any") == [ids["human"], ids["machine"]]
    assert _ids(client, url, label="human") == [ids["human"]]
    assert _ids(client, url, label="machine") == [ids["machine"]]
    assert _ids(client, url, label="edited") == []
    assert _ids(client, url, pending_review=True) == [ids["pending"]]
    assert _ids(client, url, label="none", pending_review="false") == [
        ids["rejected"],
        ids["untouched"],
    ]
    listed = {image["id"]: image for image in client.get(url).json()["data"]}
    assert listed[ids["human"]]["label_version"] == 1
    assert listed[ids["machine"]]["label_source"] == "machine"
    assert listed[ids["untouched"]]["label_version"] is None


def test_finds_files_by_name_or_hash_and_sorts(client: TestClient, runtime: Runtime) -> None:
    url, ids = _world(client, runtime)
    every = _ids(client, url)
    assert _ids(client, url, sort="-id") == every[::-1]
    names = {image["id"]: image["original_filename"] for image in client.get(url).json()["data"]}
    by_name = sorted(every, key=lambda i: names[i])
    assert _ids(client, url, sort="filename") == by_name
    assert _ids(client, url, sort="-filename") == by_name[::-1]
    wanted = names[ids["pending"]]
    assert _ids(client, url, filename=wanted.upper()[2:-4]) == [ids["pending"]]
    assert _ids(client, url, filename="%") == []  # a literal character, not a wildcard
    digest = hashlib.sha256(real_image("kvasir_seg", 52)[0].read_bytes()).hexdigest()
    assert _ids(client, url, content_hash=digest.upper()) == [ids["pending"]]
    assert _ids(client, url, content_hash="0" * 64) == []
    page = client.get(url, params={"label": "none", "limit": 2, "offset": 2}).json()
    assert page["count"] == 3 and [i["id"] for i in page["data"]] == [ids["untouched"]]


def test_bad_filters_are_422(client: TestClient, runtime: Runtime) -> None:
    url, _ = _world(client, runtime)
    for params in ({"label": "maybe"}, {"sort": "size"}, {"content_hash": "abc"},
                   {"pending_review": "perhaps"}):  # fmt: skip
        answer = client.get(url, params=params)
        assert answer.status_code == 422, (params, answer.text)
        assert answer.json()["error"]["message"]
