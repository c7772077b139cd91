"""The permission matrix: every endpoint x every role -> the expected status.

One table, generated into test cases. A route of the app without a row fails the suite, so
every new endpoint is born with its permissions written down.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from app.db import session_scope
from app.main import create_app
from app.models import Job, JobStatus, Role, utcnow
from app.runtime import Runtime
from app.services.predictions import save_result
from tests.accounts import PASSWORD, bearer, make_user
from tests.review_world import make_round_with_candidates, truth_mask
from tests.uploads import real_image

ROLES = ("anonymous", "outsider", "viewer", "annotator", "reviewer", "admin", "superuser")
OK = "ok"  # any 2xx


@dataclass
class World:
    """A project with one member per role, an outsider, an image with a label, and a job."""

    client: TestClient
    tokens: dict[str, str]
    project_id: int
    image_id: int
    job_id: int
    candidate_id: int
    prediction_id: int
    mask: bytes
    image_path: Path

    def call(self, role: str, method: str, url: str, **kwargs: object) -> httpx.Response:
        headers = bearer(self.tokens[role]) if role in self.tokens else {}
        return self.client.request(method, url, headers=headers, **kwargs)  # type: ignore[arg-type]


Request = Callable[[World, str], httpx.Response]


def _expect(minimum: str | None, *, superuser: str = OK) -> dict[str, object]:
    """Expected statuses when an endpoint needs at least ``minimum`` in the project:
    anonymous 401, non-members 404, smaller roles 403."""
    order = ["viewer", "annotator", "reviewer", "admin"]
    expected: dict[str, object] = {"anonymous": 401, "outsider": 404, "superuser": superuser}
    for role in order:
        expected[role] = OK if minimum and order.index(role) >= order.index(minimum) else 403
    return expected


ANY_USER: dict[str, object] = {role: OK for role in ROLES} | {"anonymous": 401}
SUPERUSER_ONLY: dict[str, object] = {role: 403 for role in ROLES} | {
    "anonymous": 401,
    "superuser": OK,
}
PUBLIC: dict[str, object] = {role: OK for role in ROLES}


def _p(w: World) -> str:
    return f"/api/v1/projects/{w.project_id}"


def _i(w: World) -> str:
    return f"{_p(w)}/images/{w.image_id}"


# (method, route path) -> (request, expected status per role)
MATRIX: dict[tuple[str, str], tuple[Request, dict[str, object]]] = {
    ("GET", "/api/v1/health"): (lambda w, r: w.call(r, "GET", "/api/v1/health"), PUBLIC),
    ("POST", "/api/v1/auth/login"): (
        lambda w, r: w.call(
            r, "POST", "/api/v1/auth/login", json={"username": "viewer", "password": PASSWORD}
        ),
        PUBLIC,
    ),
    ("POST", "/api/v1/auth/logout"): (
        lambda w, r: w.call(r, "POST", "/api/v1/auth/logout"),
        ANY_USER,
    ),
    ("GET", "/api/v1/users/me"): (lambda w, r: w.call(r, "GET", "/api/v1/users/me"), ANY_USER),
    ("POST", "/api/v1/users/me/password"): (
        lambda w, r: w.call(
            r,
            "POST",
            "/api/v1/users/me/password",
            json={"current_password": PASSWORD, "new_password": "another long passphrase"},
        ),
        ANY_USER,
    ),
    ("POST", "/api/v1/users"): (
        lambda w, r: w.call(
            r, "POST", "/api/v1/users", json={"username": f"new-{r}", "password": PASSWORD}
        ),
        SUPERUSER_ONLY,
    ),
    ("GET", "/api/v1/users"): (lambda w, r: w.call(r, "GET", "/api/v1/users"), SUPERUSER_ONLY),
    ("PATCH", "/api/v1/users/{username}"): (
        lambda w, r: w.call(r, "PATCH", "/api/v1/users/outsider", json={"is_active": True}),
        SUPERUSER_ONLY,
    ),
    ("POST", "/api/v1/tokens"): (
        lambda w, r: w.call(r, "POST", "/api/v1/tokens", json={"name": "ci"}),
        ANY_USER,
    ),
    ("GET", "/api/v1/tokens"): (lambda w, r: w.call(r, "GET", "/api/v1/tokens"), ANY_USER),
    ("DELETE", "/api/v1/tokens/{token_id}"): (
        lambda w, r: w.call(r, "DELETE", f"/api/v1/tokens/{_own_token_id(w, r)}"),
        ANY_USER,
    ),
    ("POST", "/api/v1/projects"): (
        lambda w, r: w.call(r, "POST", "/api/v1/projects", json={"name": f"new-{r}"}),
        ANY_USER,
    ),
    ("GET", "/api/v1/projects"): (lambda w, r: w.call(r, "GET", "/api/v1/projects"), ANY_USER),
    ("GET", "/api/v1/projects/{project_id}"): (
        lambda w, r: w.call(r, "GET", _p(w)),
        _expect("viewer"),
    ),
    ("PATCH", "/api/v1/projects/{project_id}"): (
        lambda w, r: w.call(r, "PATCH", _p(w), json={"description": f"changed by {r}"}),
        _expect("admin"),
    ),
    ("GET", "/api/v1/projects/{project_id}/members"): (
        lambda w, r: w.call(r, "GET", f"{_p(w)}/members"),
        _expect("viewer"),
    ),
    ("PUT", "/api/v1/projects/{project_id}/members/{username}"): (
        lambda w, r: w.call(r, "PUT", f"{_p(w)}/members/outsider", json={"role": "viewer"}),
        _expect("admin"),
    ),
    ("DELETE", "/api/v1/projects/{project_id}/members/{username}"): (
        lambda w, r: w.call(r, "DELETE", f"{_p(w)}/members/viewer"),
        _expect("admin"),
    ),
    ("GET", "/api/v1/projects/{project_id}/audit"): (
        lambda w, r: w.call(r, "GET", f"{_p(w)}/audit"),
        _expect("admin"),
    ),
    ("GET", "/api/v1/audit"): (lambda w, r: w.call(r, "GET", "/api/v1/audit"), SUPERUSER_ONLY),
    ("POST", "/api/v1/projects/{project_id}/images"): (
        lambda w, r: w.call(
            r, "POST", f"{_p(w)}/images", files={"file": ("a.png", w.image_path.read_bytes())}
        ),
        _expect("annotator"),
    ),
    ("POST", "/api/v1/projects/{project_id}/images/batch"): (
        lambda w, r: w.call(
            r,
            "POST",
            f"{_p(w)}/images/batch",
            files=[("files", ("a.png", w.image_path.read_bytes()))],
        ),
        _expect("annotator"),
    ),
    ("GET", "/api/v1/projects/{project_id}/images"): (
        lambda w, r: w.call(r, "GET", f"{_p(w)}/images"),
        _expect("viewer"),
    ),
    ("GET", "/api/v1/projects/{project_id}/images/{image_id}"): (
        lambda w, r: w.call(r, "GET", _i(w)),
        _expect("viewer"),
    ),
    ("GET", "/api/v1/projects/{project_id}/images/{image_id}/file"): (
        lambda w, r: w.call(r, "GET", f"{_i(w)}/file"),
        _expect("viewer"),
    ),
    ("GET", "/api/v1/projects/{project_id}/images/{image_id}/display"): (
        lambda w, r: w.call(r, "GET", f"{_i(w)}/display"),
        _expect("viewer"),
    ),
    ("GET", "/api/v1/projects/{project_id}/images/{image_id}/thumbnail"): (
        lambda w, r: w.call(r, "GET", f"{_i(w)}/thumbnail"),
        # The statistics job has not run in this world: members learn there is no thumbnail.
        _expect("viewer")
        | {r: 404 for r in ("viewer", "annotator", "reviewer", "admin", "superuser")},
    ),
    ("POST", "/api/v1/projects/{project_id}/images/{image_id}/labels"): (
        lambda w, r: w.call(r, "POST", f"{_i(w)}/labels", files={"file": ("m.png", w.mask)}),
        _expect("annotator"),
    ),
    ("GET", "/api/v1/projects/{project_id}/images/{image_id}/labels"): (
        lambda w, r: w.call(r, "GET", f"{_i(w)}/labels"),
        _expect("viewer"),
    ),
    ("GET", "/api/v1/projects/{project_id}/images/{image_id}/labels/current"): (
        lambda w, r: w.call(r, "GET", f"{_i(w)}/labels/current"),
        _expect("viewer"),
    ),
    ("GET", "/api/v1/projects/{project_id}/images/{image_id}/labels/{version}/mask"): (
        lambda w, r: w.call(r, "GET", f"{_i(w)}/labels/1/mask"),
        _expect("viewer"),
    ),
    ("POST", "/api/v1/projects/{project_id}/images/{image_id}/archive"): (
        lambda w, r: _archive_and_restore(w, r),
        _expect("admin"),
    ),
    ("POST", "/api/v1/projects/{project_id}/images/{image_id}/restore"): (
        lambda w, r: _restore_an_archived(w, r),
        _expect("admin"),
    ),
    ("GET", "/api/v1/jobs/{job_id}"): (
        lambda w, r: w.call(r, "GET", f"/api/v1/jobs/{w.job_id}"),
        _expect("viewer") | {r: OK for r in ("annotator", "reviewer", "admin", "viewer")},
    ),
}


def _archive_and_restore(w: World, role: str) -> httpx.Response:
    """Archive as ``role``; a success is undone at once, so the world stays as it was."""
    response = w.call(role, "POST", f"{_i(w)}/archive", json={"reason": "matrix"})
    if response.is_success:
        assert w.call("superuser", "POST", f"{_i(w)}/restore").is_success
    return response


def _restore_an_archived(w: World, role: str) -> httpx.Response:
    assert w.call("superuser", "POST", f"{_i(w)}/archive", json={"reason": "matrix"}).is_success
    response = w.call(role, "POST", f"{_i(w)}/restore")
    if not response.is_success:
        assert w.call("superuser", "POST", f"{_i(w)}/restore").is_success
    return response


def _c(w: World) -> str:
    return f"{_p(w)}/candidates/{w.candidate_id}"


def _cancel_a_running_round(w: World, role: str) -> httpx.Response:
    started = w.call("superuser", "POST", f"{_p(w)}/rounds", json={})
    assert started.status_code == 201, started.text
    return w.call(role, "POST", f"{_p(w)}/rounds/{started.json()['number']}/cancel")


ROUND_ROWS: dict[tuple[str, str], tuple[Request, dict[str, object]]] = {
    ("POST", "/api/v1/projects/{project_id}/rounds"): (
        lambda w, r: w.call(r, "POST", f"{_p(w)}/rounds", json={"model": {"steps": 1}}),
        _expect("admin"),
    ),
    ("GET", "/api/v1/projects/{project_id}/rounds"): (
        lambda w, r: w.call(r, "GET", f"{_p(w)}/rounds"),
        _expect("viewer"),
    ),
    ("GET", "/api/v1/projects/{project_id}/rounds/{number}"): (
        lambda w, r: w.call(r, "GET", f"{_p(w)}/rounds/1"),
        _expect("viewer"),
    ),
    ("POST", "/api/v1/projects/{project_id}/rounds/{number}/cancel"): (
        _cancel_a_running_round,
        _expect("admin"),
    ),
    ("GET", "/api/v1/projects/{project_id}/rounds/{number}/statistics"): (
        lambda w, r: w.call(r, "GET", f"{_p(w)}/rounds/1/statistics"),
        _expect("viewer"),
    ),
    ("GET", "/api/v1/projects/{project_id}/models"): (
        lambda w, r: w.call(r, "GET", f"{_p(w)}/models"),
        _expect("viewer"),
    ),
    ("GET", "/api/v1/projects/{project_id}/models/{number}"): (
        lambda w, r: w.call(r, "GET", f"{_p(w)}/models/1"),
        _expect("viewer"),
    ),
    ("GET", "/api/v1/projects/{project_id}/models/{number}/checkpoint"): (
        lambda w, r: w.call(r, "GET", f"{_p(w)}/models/1/checkpoint"),
        _expect("viewer"),
    ),
    ("GET", "/api/v1/projects/{project_id}/status"): (
        lambda w, r: w.call(r, "GET", f"{_p(w)}/status"),
        _expect("viewer"),
    ),
    ("GET", "/api/v1/projects/{project_id}/review-queue"): (
        lambda w, r: w.call(r, "GET", f"{_p(w)}/review-queue"),
        _expect("viewer"),
    ),
    ("POST", "/api/v1/projects/{project_id}/review-queue/accept-above"): (
        lambda w, r: w.call(
            r, "POST", f"{_p(w)}/review-queue/accept-above", json={"threshold": 0.5}
        ),
        _expect("reviewer"),
    ),
    ("GET", "/api/v1/projects/{project_id}/candidates/{candidate_id}"): (
        lambda w, r: w.call(r, "GET", _c(w)),
        _expect("viewer"),
    ),
    ("GET", "/api/v1/projects/{project_id}/candidates/{candidate_id}/mask"): (
        lambda w, r: w.call(r, "GET", f"{_c(w)}/mask"),
        _expect("viewer"),
    ),
    ("GET", "/api/v1/projects/{project_id}/candidates/{candidate_id}/overlay"): (
        lambda w, r: w.call(r, "GET", f"{_c(w)}/overlay"),
        _expect("viewer"),
    ),
    ("POST", "/api/v1/projects/{project_id}/candidates/{candidate_id}/accept"): (
        lambda w, r: w.call(r, "POST", f"{_c(w)}/accept"),
        _expect("reviewer"),
    ),
    ("POST", "/api/v1/projects/{project_id}/candidates/{candidate_id}/reject"): (
        lambda w, r: w.call(r, "POST", f"{_c(w)}/reject", json={"reason": "wrong organ"}),
        _expect("reviewer"),
    ),
    ("POST", "/api/v1/projects/{project_id}/candidates/{candidate_id}/undo"): (
        # each role undoes its own accept (those that may not decide fail at both steps)
        lambda w, r: (w.call(r, "POST", f"{_c(w)}/accept"), w.call(r, "POST", f"{_c(w)}/undo"))[1],
        _expect("reviewer"),
    ),
    ("POST", "/api/v1/projects/{project_id}/candidates/{candidate_id}/edit"): (
        lambda w, r: w.call(r, "POST", f"{_c(w)}/edit", files={"file": ("m.png", w.mask)}),
        _expect("reviewer"),
    ),
}
MATRIX.update(ROUND_ROWS)


def _labelled_zip(w: World) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(f"images/{w.image_path.name}", w.image_path.read_bytes())
        archive.writestr(f"masks/{w.image_path.stem}.png", w.mask)
    return buffer.getvalue()


def _prediction(w: World) -> str:
    return f"{_p(w)}/predictions/{w.prediction_id}"


EXCHANGE_ROWS: dict[tuple[str, str], tuple[Request, dict[str, object]]] = {
    ("GET", "/api/v1/projects/{project_id}/candidates"): (
        lambda w, r: w.call(r, "GET", f"{_p(w)}/candidates", params={"status": "pending"}),
        _expect("viewer"),
    ),
    # Predictions change no data in the project: every member may ask for one.
    ("POST", "/api/v1/projects/{project_id}/predict"): (
        lambda w, r: w.call(
            r,
            "POST",
            f"{_p(w)}/predict",
            params={"wait": 0},
            files={"file": ("a.png", w.image_path.read_bytes())},
        ),
        _expect("viewer"),
    ),
    ("GET", "/api/v1/projects/{project_id}/predictions/{job_id}"): (
        lambda w, r: w.call(r, "GET", _prediction(w)),
        _expect("viewer"),
    ),
    ("GET", "/api/v1/projects/{project_id}/predictions/{job_id}/mask"): (
        lambda w, r: w.call(r, "GET", f"{_prediction(w)}/mask"),
        _expect("viewer"),
    ),
    # Viewers can read every image and label one by one already; the export adds nothing.
    ("GET", "/api/v1/projects/{project_id}/export"): (
        lambda w, r: w.call(r, "GET", f"{_p(w)}/export", params={"format": "masks"}),
        _expect("viewer"),
    ),
    ("POST", "/api/v1/projects/{project_id}/import"): (
        lambda w, r: w.call(
            r, "POST", f"{_p(w)}/import", files={"file": ("set.zip", _labelled_zip(w))}
        ),
        _expect("annotator"),
    ),
}
MATRIX.update(EXCHANGE_ROWS)


def _own_token_id(world: World, role: str) -> int:
    if role not in world.tokens:
        return 1
    listed = world.call(role, "GET", "/api/v1/tokens").json()
    return int(listed[0]["id"])


@pytest.fixture
def world(runtime: Runtime) -> Iterator[World]:
    image_path, mask_path = real_image("busi", 3)
    with TestClient(create_app(runtime=runtime)) as client:
        _, root = make_user(runtime, "superuser", superuser=True)
        owner = bearer(root)
        project_id = client.post("/api/v1/projects", json={"name": "p"}, headers=owner).json()["id"]
        body = client.post(
            f"/api/v1/projects/{project_id}/images",
            files={"file": (image_path.name, image_path.read_bytes())},
            headers=owner,
        ).json()
        mask = mask_path.read_bytes()
        client.post(
            f"/api/v1/projects/{project_id}/images/{body['image']['id']}/labels",
            files={"file": ("m.png", mask)},
            headers=owner,
        )
        tokens = {"superuser": root}
        for role in Role:
            tokens[role.value] = make_user(runtime, role.value, roles={project_id: role})[1]
        tokens["outsider"] = make_user(runtime, "outsider")[1]
        made = make_round_with_candidates(
            runtime, project_id, [body["image"]["id"]], [0.93], [truth_mask(mask_path)]
        )
        # the round's model version: its checkpoint is downloadable
        runtime.storage.put_at(f"models/project-{project_id}/round-1.pt", b"a checkpoint")
        prediction_id = _finished_prediction(runtime, project_id, mask)
        yield World(
            client=client,
            tokens=tokens,
            project_id=project_id,
            image_id=body["image"]["id"],
            job_id=body["job_id"],
            candidate_id=made.candidate_ids[0],
            prediction_id=prediction_id,
            mask=mask,
            image_path=image_path,
        )


def _finished_prediction(runtime: Runtime, project_id: int, mask: bytes) -> int:
    """A prediction job as a worker leaves it: succeeded, its mask and summary stored."""
    with session_scope(runtime.session_factory) as session:
        job = Job(
            kind="predict",
            project_id=project_id,
            payload={"filename": "a.png"},
            status=JobStatus.SUCCEEDED,
            finished_at=utcnow(),
        )
        session.add(job)
        session.flush()
        job_id = job.id
    summary = {"model_version_id": 1, "model_version": 1, "width": 1, "height": 1, "classes": []}
    save_result(storage=runtime.storage, job_id=job_id, mask_png=mask, summary=summary)
    return job_id


CASES = [(method, path, role) for (method, path) in MATRIX for role in ROLES]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize(("method", "path", "role"), CASES)
def test_permission(world: World, method: str, path: str, role: str) -> None:
    request, expected = MATRIX[(method, path)]
    response = request(world, role)
    want = expected[role]
    if want == OK:
        assert 200 <= response.status_code < 300, (role, response.status_code, response.text)
    else:
        assert response.status_code == want, (role, response.status_code, response.text)
    if response.status_code >= 400:
        assert response.json()["error"]["message"]
        documented = world.client.app.openapi()["paths"][path][method.lower()]["responses"]  # type: ignore[attr-defined]
        assert str(response.status_code) in documented, (role, sorted(documented))


def test_every_route_has_a_row_in_the_matrix(tmp_path: Path) -> None:
    from app.settings import Settings

    settings = Settings(environment="development", data_dir=tmp_path)
    app = create_app(settings)
    routes = {
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        for method in operations
    }
    assert len(routes) >= 20
    missing = sorted(routes - set(MATRIX))
    assert missing == [], f"endpoints without a row in the permission matrix: {missing}"
    assert set(MATRIX) <= routes, f"rows for endpoints that do not exist: {set(MATRIX) - routes}"
