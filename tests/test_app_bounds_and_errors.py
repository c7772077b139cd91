"""Out-of-range numbers, forged cursors, unknown routes and bugs all get the documented error
envelope ``{"error": {"code", "message"}}`` with a 4xx, or a 500 that tells nothing of the
server; a failed job shows its traceback only to site administrators."""

from __future__ import annotations

import base64
import json
import logging
import re
import traceback
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.db import session_scope
from app.errors import InvalidInput
from app.main import create_app
from app.models import MAX_DB_INT, Job, JobStatus, Role, utcnow
from app.runtime import Runtime
from app.services.jobs import TRACEBACK_WITHHELD, error_summary
from app.services.review import decode_cursor, encode_cursor
from tests.accounts import bearer, make_user
from tests.shared_data import REPO_ROOT
from tests.uploads import create_project

TOO_BIG = MAX_DB_INT + 1  # one more than the database's integer columns hold


@pytest.fixture
def root_client(runtime: Runtime) -> Iterator[TestClient]:
    """A site administrator's client that answers a server error instead of raising it."""
    _, token = make_user(runtime, "root", superuser=True)
    app = create_app(runtime=runtime)
    with TestClient(app, headers=bearer(token), raise_server_exceptions=False) as client:
        yield client


def integer_parameters(client: TestClient) -> list[tuple[str, str, str, str]]:
    """(method, path template, where, name) of every integer path or query parameter."""
    found = []
    for path, operations in client.app.openapi()["paths"].items():  # type: ignore[attr-defined]
        for method, operation in operations.items():
            for parameter in operation.get("parameters", []):
                schema = parameter["schema"]
                types = [schema.get("type")] + [s.get("type") for s in schema.get("anyOf", [])]
                if "integer" in types:
                    found.append((method.upper(), path, parameter["in"], parameter["name"]))
    return found


def fill(path: str, project_id: int, values: dict[str, int] | None = None) -> str:
    """The path with ``values`` where given, else the project's id, and 1 (or "x") elsewhere."""
    given = {"project_id": project_id, **(values or {})}

    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in given:
            return str(given[name])
        return "x" if name == "username" else "1"

    return re.sub(r"\{(\w+)\}", one, path)


def test_every_integer_parameter_beyond_the_database_integer_is_a_422(
    root_client: TestClient,
) -> None:
    project_id = int(create_project(root_client)["id"])  # type: ignore[call-overload]
    parameters = integer_parameters(root_client)
    assert len(parameters) >= 25
    wrong = []
    for method, path, where, name in parameters:
        if where == "path":
            url, params = fill(path, project_id, {name: TOO_BIG}), {}
        else:
            url, params = fill(path, project_id), {name: TOO_BIG}
        response = root_client.request(method, url, params=params)
        body = response.json()
        named = [d["loc"] for d in body.get("error", {}).get("details", [])]
        if response.status_code != 422 or [where, name] not in named:
            wrong.append((method, path, name, response.status_code, body))
    assert wrong == []


def test_ids_at_the_bound_are_not_found_not_a_database_error(root_client: TestClient) -> None:
    project_id = int(create_project(root_client)["id"])  # type: ignore[call-overload]
    paths = root_client.app.openapi()["paths"]  # type: ignore[attr-defined]
    wrong = []
    for method, path, where, name in integer_parameters(root_client):
        if where != "path":
            continue
        response = root_client.request(method, fill(path, project_id, {name: MAX_DB_INT}))
        documented = paths[path][method.lower()]["responses"]
        if not 400 <= response.status_code < 500 or str(response.status_code) not in documented:
            wrong.append((method, path, response.status_code, response.text))
    assert wrong == []
    queue = f"/api/v1/projects/{project_id}/review-queue"
    assert root_client.get(queue, params={"round": MAX_DB_INT}).json()["count"] == 0


def _cursor(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


FORGED_CURSORS = {
    "id beyond 64 bits": "[0.5, 99999999999999999999999]",
    "NaN score": "[NaN, 3]",
    "infinite score": "[1e400, 3]",
    "bool score": "[true, 3]",
    "bool id": "[0.5, true]",
    "fractional id": "[0.5, 3.5]",
    "id 0": "[0.5, 0]",
    "negative id": "[0.5, -3]",
    "string score": '["0.5", 3]',
    "string id": '[0.5, "3"]',
    "object": '{"score": 0.5, "id": 3}',
    "three items": "[0.5, 3, 1]",
    "deep nesting": "[" * 100_000,
}


@pytest.mark.parametrize("case", sorted(FORGED_CURSORS))
def test_a_forged_review_cursor_is_a_422(case: str) -> None:
    with pytest.raises(InvalidInput, match="cursor is not one this API returned"):
        decode_cursor(_cursor(FORGED_CURSORS[case]))


def test_cursors_the_api_makes_decode_to_what_went_in() -> None:
    for score, candidate_id in ((0.95, 1), (1.0, MAX_DB_INT), (0.0, 7), (1e-9, 42)):
        assert decode_cursor(encode_cursor(score, candidate_id)) == (score, candidate_id)


def test_the_review_queue_refuses_forged_cursors_in_the_envelope(root_client: TestClient) -> None:
    project_id = int(create_project(root_client)["id"])  # type: ignore[call-overload]
    url = f"/api/v1/projects/{project_id}/review-queue"
    for text in ("[0.5, 99999999999999999999999]", "[NaN, 3]", "[1e400, 3]", "[true, 3]"):
        response = root_client.get(url, params={"cursor": _cursor(text)})
        assert response.status_code == 422, (text, response.text)
        assert response.json()["error"]["message"] == "cursor is not one this API returned"
    too_long = root_client.get(url, params={"cursor": "A" * 10_000})
    assert too_long.status_code == 422 and too_long.json()["error"]["code"] == "invalid_request"
    fine = root_client.get(url, params={"cursor": encode_cursor(0.5, 3)})
    assert fine.status_code == 200 and fine.json()["data"] == []


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_unknown_routes_and_methods_answer_in_the_envelope(root_client: TestClient) -> None:
    for url in ("/api/v1/no-such-thing", "/no-such-page", "/static/no-such-module.js"):
        response = root_client.get(url)
        assert response.status_code == 404, url
        assert response.json() == {
            "error": {"code": "not_found", "message": f"not found: GET {url}"}
        }
    wrong = root_client.delete("/api/v1/users/me")
    assert wrong.status_code == 405
    assert wrong.json()["error"] == {
        "code": "method_not_allowed",
        "message": "method not allowed: DELETE /api/v1/users/me",
    }
    assert wrong.headers["allow"] == "GET"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_bug_is_a_500_envelope_and_a_logged_traceback(
    root_client: TestClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(**_kwargs: Any) -> list[Any]:
        raise RuntimeError("secret detail from /srv/samdsk/app/services/accounts.py")

    monkeypatch.setattr("app.api.routes.tokens.list_tokens", broken)
    with caplog.at_level(logging.ERROR, logger="app.api.errors"):
        response = root_client.get("/api/v1/tokens")
    assert response.status_code == 500
    assert response.json() == {
        "error": {"code": "internal_error", "message": "internal server error"}
    }
    assert "secret" not in response.text
    (logged,) = [r for r in caplog.records if r.name == "app.api.errors"]
    assert "GET /api/v1/tokens" in logged.getMessage()
    assert logged.exc_info is not None and isinstance(logged.exc_info[1], RuntimeError)


def _load_checkpoint() -> None:
    checkpoint: dict[str, bytes] = {}
    try:
        checkpoint["weights"]
    except KeyError as exc:
        raise RuntimeError("checkpoint models/round-1.pt is unreadable") from exc


def _failed_job(runtime: Runtime, project_id: int) -> tuple[int, str]:
    try:
        _load_checkpoint()
    except RuntimeError:
        trace = traceback.format_exc()
    with session_scope(runtime.session_factory) as session:
        job = Job(
            kind="round",
            project_id=project_id,
            payload={},
            status=JobStatus.FAILED,
            message="checkpoint models/round-1.pt is unreadable",
            error=trace,
            finished_at=utcnow(),
        )
        session.add(job)
        session.flush()
        return job.id, trace


def test_a_failed_job_shows_its_traceback_to_site_administrators_only(
    root_client: TestClient, runtime: Runtime
) -> None:
    project_id = int(create_project(root_client)["id"])  # type: ignore[call-overload]
    job_id, trace = _failed_job(runtime, project_id)
    assert root_client.get(f"/api/v1/jobs/{job_id}").json()["error"] == trace
    for role in (Role.VIEWER, Role.ADMIN):
        _, token = make_user(runtime, f"a-{role.value}", roles={project_id: role})
        seen = root_client.get(f"/api/v1/jobs/{job_id}", headers=bearer(token)).json()
        assert seen["error"] == "RuntimeError: checkpoint models/round-1.pt is unreadable"
        assert seen["status"] == "failed" and "File " not in json.dumps(seen)


def _formatted(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc))


def _raised(exc: BaseException) -> BaseException:
    try:
        raise exc
    except BaseException as caught:
        return caught


def test_error_summary_keeps_the_exception_and_drops_the_frames() -> None:
    assert error_summary(None) is None
    assert error_summary("cancelled by the admin") == "cancelled by the admin"
    two_lines = _formatted(_raised(ValueError("first line\nsecond line")))
    assert error_summary(two_lines) == "ValueError: first line\nsecond line"
    try:
        _load_checkpoint()
    except RuntimeError as exc:
        chained = _formatted(exc)
    assert "KeyError" in chained  # the cause comes first; the last exception is the one shown
    assert error_summary(chained) == "RuntimeError: checkpoint models/round-1.pt is unreadable"
    group = _formatted(_raised(ExceptionGroup("several", [ValueError("a")])))
    assert error_summary(group) == TRACEBACK_WITHHELD


def test_readme_code_blocks_close_where_they_should() -> None:
    """A fence closed early turns the shell comments after it into headings on GitHub."""
    lines = (REPO_ROOT / "README.md").read_text().splitlines()
    inside, opened = False, 0
    for number, line in enumerate(lines, 1):
        if line.startswith("```"):
            assert not (inside and line.strip() != "```"), f"line {number} opens inside a block"
            inside, opened = not inside, number
        else:
            assert inside or number == 1 or not line.startswith("# "), f"line {number}: {line}"
    assert not inside, f"the block opened at line {opened} never closes"


def test_a_query_parameter_an_operation_does_not_take_is_a_422(client: TestClient) -> None:
    """A misspelt filter must not answer with everything, unfiltered."""
    project = create_project(client)
    url = f"/api/v1/projects/{project['id']}/images"
    refused = client.get(url, params={"lable": "none"})
    assert refused.status_code == 422
    error = refused.json()["error"]
    assert error["code"] == "unknown_query_parameter"
    assert "'lable'" in error["message"] and "label" in error["message"]
    assert client.get(url, params={"label": "none", "limit": 5}).status_code == 200
    assert client.get("/api/v1/health", params={"verbose": "1"}).status_code == 422
    assert client.get("/api/v1/health").status_code == 200
