"""Changing a project after it exists (PATCH): only what is sent changes, each change is in
the audit trail with its old value, and a refused change (other class names, knowledge of an
unknown class, settings a round could not run with, a name in use) changes nothing. On
SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from app.models import Project
from app.runtime import Runtime
from tests.uploads import create_project
from workers.rounds.pipeline import _effective_settings

KNOWLEDGE = {
    "polyp": {"min_regions": 1, "max_regions": 3, "min_area": 0.001, "max_area": 0.9},
    "instrument": {"min_regions": 0, "max_regions": 1, "min_area": 0.0, "max_area": 0.5},
}


def _project(client: TestClient) -> tuple[str, dict[str, Any]]:
    made = create_project(
        client, name="polyps", class_names=["polyp", "instrument"], knowledge=KNOWLEDGE
    )
    return f"/api/v1/projects/{made['id']}", made  # fmt: skip


INVERTED = {"min_regions": 4, "max_regions": 1}


def _updates(client: TestClient, url: str) -> list[dict[str, Any]]:
    events = client.get(f"{url}/audit").json()["data"]
    return [event for event in events if event["action"] == "project.update"]


def test_only_what_is_sent_changes_and_the_audit_says_from_what(
    client: TestClient, runtime: Runtime
) -> None:
    url, made = _project(client)
    assert made["auto_accept_threshold"] is None
    fewer = {"min_regions": 1, "max_regions": 1, "min_area": 0.01, "max_area": 0.5}
    changed = client.patch(url, json={"knowledge": {"polyp": fewer}, "auto_accept_threshold": 0.97})
    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert body["knowledge"] == {"polyp": fewer, "instrument": KNOWLEDGE["instrument"]}
    assert body["auto_accept_threshold"] == 0.97
    assert {k: body[k] for k in ("name", "description", "class_names", "model_settings")} == {
        k: made[k] for k in ("name", "description", "class_names", "model_settings")
    }
    assert client.get(url).json() == body
    cleared = client.patch(url, json={"auto_accept_threshold": None, "description": "Kvasir"})
    assert cleared.json()["auto_accept_threshold"] is None
    assert cleared.json()["description"] == "Kvasir"
    events = _updates(client, url)
    assert len(events) == 2
    first, second = sorted(events, key=lambda event: int(event["id"]))
    assert first["details"]["knowledge"]["from"]["polyp"] == KNOWLEDGE["polyp"]
    assert first["details"]["auto_accept_threshold"] == {"from": None, "to": 0.97}
    assert second["details"] == {
        "auto_accept_threshold": {"from": 0.97, "to": None},
        "description": {"from": "", "to": "Kvasir"},
    }
    assert client.patch(url, json={"description": "Kvasir"}).status_code == 200
    assert len(_updates(client, url)) == 2  # nothing changed, nothing recorded
    # the next round matches under the new knowledge
    with runtime.session_factory() as session:
        project = session.get(Project, made["id"])
        assert project is not None
        assert project.knowledge["polyp"] == fewer
        assert "model" in _effective_settings(runtime, project, {})


def test_refused_changes_change_nothing(client: TestClient) -> None:
    url, made = _project(client)
    create_project(client, name="other")
    before = client.get(url).json()
    refused = {
        "other class names": ({"class_names": ["polyp"]}, 422, "class names are fixed"),
        "unknown class": ({"knowledge": {"tumour": {}}}, 422, "unknown classes"),
        "bad knowledge": ({"knowledge": {"polyp": INVERTED}}, 422, "min_regions"),
        "bad model": ({"model_settings": {"encoder": "no-such-net"}}, 422, "no-such-net"),
        "threshold": ({"auto_accept_threshold": 1.5}, 422, "auto_accept_threshold"),
        "unknown field": ({"knowlege": {}}, 422, "knowlege"),
        "name in use": ({"name": "OTHER ", "description": "x"}, 409, "already exists"),
    }  # fmt: skip
    for case, (body, status, said) in refused.items():
        answer = client.patch(url, json=body)
        assert answer.status_code == status, (case, answer.text)
        assert said in answer.json()["error"]["message"], (case, answer.text)
        assert client.get(url).json() == before, case
    same_names = client.patch(url, json={"class_names": ["polyp", "instrument"]})
    assert same_names.status_code == 200
    renamed = client.patch(url, json={"name": "POLYPS"})  # its own name in other case
    assert renamed.status_code == 200 and renamed.json()["name"] == "POLYPS"
    assert made["id"] == renamed.json()["id"]


def test_a_new_project_may_set_its_auto_accept_threshold(client: TestClient) -> None:
    made = create_project(client, name="auto", auto_accept_threshold=0.99)
    assert made["auto_accept_threshold"] == 0.99
