"""Projects through the API, on SQLite and PostgreSQL."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.uploads import create_project, real_image


def test_create_list_get_project(client: TestClient) -> None:
    created = create_project(
        client,
        name="busi",
        class_names=["lesion"],
        knowledge={"lesion": {"min_regions": 0, "max_regions": 2, "min_area": 0.001}},
    )
    assert created["class_names"] == ["lesion"]
    assert created["knowledge"] == {
        "lesion": {"min_regions": 0, "max_regions": 2, "min_area": 0.001, "max_area": 1.0}
    }
    listed = client.get("/api/v1/projects").json()
    assert listed["count"] == 1 and listed["data"][0]["id"] == created["id"]
    fetched = client.get(f"/api/v1/projects/{created['id']}").json()
    assert fetched == created


def test_classes_get_default_knowledge(client: TestClient) -> None:
    created = create_project(client, class_names=["polyp", "instrument"])
    assert set(created["knowledge"]) == {"polyp", "instrument"}  # type: ignore[arg-type]


def test_pagination(client: TestClient) -> None:
    for index in range(5):
        create_project(client, name=f"p{index}")
    page = client.get("/api/v1/projects", params={"offset": 2, "limit": 2}).json()
    assert page["count"] == 5
    assert [p["name"] for p in page["data"]] == ["p2", "p3"]


def test_duplicate_name_is_conflict(client: TestClient) -> None:
    create_project(client, name="same")
    response = client.post("/api/v1/projects", json={"name": "same"})
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "conflict"


def test_invalid_knowledge_rejected(client: TestClient) -> None:
    bad = [
        {"name": "a", "knowledge": {"nope": {}}},
        {"name": "b", "knowledge": {"foreground": {"min_regions": 3, "max_regions": 1}}},
        {"name": "c", "knowledge": {"foreground": {"min_area": 0.5, "max_area": 0.1}}},
        {"name": "d", "class_names": ["x", "x"]},
        {"name": "e", "class_names": ["Polyp", "polyp"]},
        {"name": ""},
    ]
    for body in bad:
        response = client.post("/api/v1/projects", json=body)
        assert response.status_code == 422, body
        assert response.json()["error"]["message"]
    assert client.get("/api/v1/projects").json()["count"] == 0


def test_unknown_project_is_404(client: TestClient) -> None:
    response = client.get("/api/v1/projects/999")
    assert response.status_code == 404
    assert "999" in response.json()["error"]["message"]
    assert client.get("/api/v1/projects/999/images").status_code == 404


def test_openapi_has_stable_operation_ids(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    ids = {op["operationId"] for path in schema["paths"].values() for op in path.values()}
    expected = {
        "get_health", "create_project", "list_projects", "get_project", "upload_image",
        "upload_images", "list_images", "get_image", "download_image", "get_thumbnail",
        "upload_label", "list_labels", "get_current_label", "get_label_mask", "get_job",
    }  # fmt: skip
    assert expected <= ids
    assert all(path.startswith("/api/v1/") for path in schema["paths"])


def test_names_are_unique_ignoring_case_and_surrounding_spaces(client: TestClient) -> None:
    created = create_project(client, name="  Polyps ")
    assert created["name"] == "Polyps"
    for name in ("polyps", "POLYPS", " polyps\t"):
        response = client.post("/api/v1/projects", json={"name": name})
        assert response.status_code == 409, name
        assert "'Polyps' already exists" in response.json()["error"]["message"]
    assert client.get("/api/v1/projects").json()["count"] == 1
    assert client.post("/api/v1/projects", json={"name": "   "}).status_code == 422


def test_class_names_have_a_length_a_page_can_show(client: TestClient) -> None:
    longest = "x" * 100
    created = create_project(client, name="a", class_names=[longest, " polyp "])
    assert created["class_names"] == [longest, "polyp"]
    response = client.post("/api/v1/projects", json={"name": "b", "class_names": ["x" * 5000]})
    assert response.status_code == 422
    assert "class_names.0" in response.json()["error"]["message"]
    assert client.get("/api/v1/projects").json()["count"] == 1


def test_a_misspelt_knowledge_key_is_named_not_dropped(client: TestClient) -> None:
    knowledge = {"foreground": {"min_regions": 1, "max_region": 3}}
    response = client.post("/api/v1/projects", json={"name": "a", "knowledge": knowledge})
    assert response.status_code == 422
    assert "knowledge.foreground.max_region" in response.json()["error"]["message"]
    assert client.get("/api/v1/projects").json()["count"] == 0


def test_what_a_post_creates_is_named_in_location(client: TestClient) -> None:
    """The project, the image and the round a POST made: a client follows Location to them."""
    answer = client.post("/api/v1/projects", json={"name": "located"})
    project = client.get(answer.headers["Location"])
    assert answer.status_code == 201 and project.json() == answer.json()
    image_path, mask_path = real_image("kvasir_seg", 7)
    images = f"/api/v1/projects/{answer.json()['id']}/images"
    stored = client.post(images, files={"file": (image_path.name, image_path.read_bytes())})
    assert stored.status_code == 201
    assert client.get(stored.headers["Location"]).json()["id"] == stored.json()["image"]["id"]
    again = client.post(images, files={"file": (image_path.name, image_path.read_bytes())})
    assert again.status_code == 200 and "Location" not in again.headers
    labels = f"{images}/{stored.json()['image']['id']}/labels"
    assert client.post(labels, files={"file": ("m.png", mask_path.read_bytes())}).is_success
    started = client.post(f"/api/v1/projects/{answer.json()['id']}/rounds", json={})
    assert started.status_code == 201, started.text
    assert client.get(started.headers["Location"]).json()["id"] == started.json()["id"]
