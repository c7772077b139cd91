"""The OpenAPI document describes failures as the API sends them: the error envelope, under
each status an operation really answers with, so that a client generated from it reads
errors right. Real refusals are checked against what their operation documents."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from app.models import Role
from app.runtime import Runtime
from tests.accounts import bearer, make_user
from tests.uploads import create_project

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def documented(client: TestClient, method: str, path: str) -> dict[str, Any]:
    """The documented responses of the operation behind ``path`` (a template)."""
    document = client.get("/openapi.json").json()
    responses: dict[str, Any] = document["paths"][path][method.lower()]["responses"]
    return responses


def check_documented(client: TestClient, answer: httpx.Response, path: str, status: int) -> None:
    assert answer.status_code == status, answer.text
    assert set(answer.json()) == {"error"} and answer.json()["error"]["message"]
    responses = documented(client, answer.request.method, path)
    assert str(status) in responses, (path, status, sorted(responses))


def test_every_failure_is_documented_as_the_envelope(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    schemas = document["components"]["schemas"]
    assert "HTTPValidationError" not in schemas
    assert set(schemas["ErrorBody"]["properties"]) == {"error"}
    failures = 0
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                if status.startswith("4"):
                    failures += 1
                    schema = response["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/ErrorBody"}, (path, method)
            if operation.get("security"):  # needs a token
                assert "401" in operation["responses"], (path, method)
    assert failures > 100


def test_real_refusals_are_among_their_operations_documented_statuses(
    client: TestClient, anon_client: TestClient, runtime: Runtime
) -> None:
    project = f"/api/v1/projects/{create_project(client)['id']}"
    template = "/api/v1/projects/{project_id}"
    check_documented(client, client.get("/api/v1/projects/424242"), template, 404)
    check_documented(client, client.post(f"{project}/rounds", json={}), f"{template}/rounds", 409)
    text = client.post(f"{project}/images", files={"file": ("a.png", b"not an image at all")})
    assert text.status_code in (415, 422)
    check_documented(client, text, f"{template}/images", text.status_code)
    check_documented(client, anon_client.get(f"{project}/images"), f"{template}/images", 401)
    bad = client.post(f"{project}/rounds", json={"threshold": "high"})
    check_documented(client, bad, f"{template}/rounds", 422)
    _, viewer = make_user(runtime, "vera", roles={int(project.rsplit("/", 1)[1]): Role.VIEWER})
    forbidden = client.post(f"{project}/rounds", json={}, headers=bearer(viewer))
    check_documented(client, forbidden, f"{template}/rounds", 403)
    wrong = anon_client.post("/api/v1/auth/login", json={"username": "x", "password": "y"})
    check_documented(client, wrong, "/api/v1/auth/login", 401)
    runtime.settings.max_upload_bytes = 1000
    large = client.post(f"{project}/images", files={"file": ("a.png", b"\x89PNG" + b"0" * 5000)})
    check_documented(client, large, f"{template}/images", 413)
    assert "200" in documented(client, "POST", f"{template}/images")  # an image stored before
