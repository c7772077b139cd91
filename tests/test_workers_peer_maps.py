"""Peer maps in the service (round setting ``peer_maps``): with model setting
``machine_augment="auto"`` the round keeps every policy's model, stores each checkpoint, and
matches every unlabeled image against the mean of their maps; a resumed round loads the same
models; without "auto" the request is refused before anything starts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

import workers.rounds.training
from app.models import Candidate, Image, Job, ModelVersion, Project, Round
from app.runtime import Runtime
from samdsk.model import ModelConfig, load_checkpoint, predict_probabilities
from samdsk.peers import MIN_IMAGES_TO_SCREEN, PeerScreen
from samdsk.rounds import RoundConfig, construct_annotation, mean_map
from tests.test_app_round_requests import label_an_image
from tests.test_workers_augment_choice import _labelled_project
from tests.uploads import create_project, real_image, state_snapshot, upload
from workers.rounds.data import load_rgb
from workers.rounds.matching import project_knowledge
from workers.rounds.pipeline import _effective_settings, run_round_job
from workers.rounds.proposals import proposals_for
from workers.rounds.tracker import RoundTracker
from workers.rounds.training import train_or_resume
from workers.runner import run_job

pytestmark = pytest.mark.usefixtures("one_torch_thread")
UNLABELED = 3


def test_peer_maps_without_auto_are_422_and_start_nothing(
    runtime: Runtime, client: TestClient
) -> None:
    project = create_project(
        client, class_names=["polyp"], model_settings={"steps": 4, "machine_augment": "same"}
    )
    label_an_image(client, project["id"])
    url = f"/api/v1/projects/{project['id']}/rounds"
    before = state_snapshot(runtime)
    response = client.post(url, json={"peer_maps": True})
    assert response.status_code == 422, response.text
    assert "machine_augment" in response.json()["error"]["message"]
    assert state_snapshot(runtime) == before
    with runtime.session_factory() as session:
        assert session.scalar(select(func.count()).select_from(Round)) == 0
    # the same request with "auto" for this round is accepted
    auto = client.post(url, json={"peer_maps": True, "model": {"machine_augment": "auto"}})
    assert auto.status_code == 201, auto.text


@pytest.mark.parametrize(
    ("policy", "asked", "used"),
    [("auto", None, True), ("auto", True, True), ("auto", False, False), ("same", None, False)],
)
def test_peer_maps_are_on_under_auto_unless_a_round_turns_them_off(
    runtime: Runtime, client: TestClient, policy: str, asked: bool | None, used: bool
) -> None:
    project = create_project(client, class_names=["polyp"], model_settings={"steps": 4})
    label_an_image(client, project["id"])
    body: dict[str, object] = {"model": {"machine_augment": policy}}
    if asked is not None:
        body["peer_maps"] = asked
    started = client.post(f"/api/v1/projects/{project['id']}/rounds", json=body)
    assert started.status_code == 201, started.text
    with runtime.session_factory() as session:
        stored = session.get(Project, project["id"])
        assert stored is not None
        effective = _effective_settings(runtime, stored, started.json()["settings"])
    assert effective["peer_maps"] is used


def _run_round(runtime: Runtime, client: TestClient) -> tuple[int, int]:
    """(project id, round id) of a round with peer maps, run to the end here."""
    project_id = _labelled_project(client, want_validation=True)
    for index in range(UNLABELED):
        upload(client, project_id, real_image("kvasir_seg", 60 + index)[0])
    started = client.post(f"/api/v1/projects/{project_id}/rounds", json={"peer_maps": True})
    assert started.status_code == 201, started.text
    round_id = int(started.json()["id"])
    with runtime.session_factory() as session:
        job_id = session.scalars(select(Job.id).where(Job.round_id == round_id)).one()
    assert run_job(runtime, job_id, lambda job, ctx: run_round_job(runtime, job, ctx))
    return project_id, round_id


FinishedRound = tuple[Round, Project, ModelVersion, list[Candidate], dict[int, Image | None]]


def _finished_round(runtime: Runtime, project_id: int, round_id: int) -> FinishedRound:
    """The round (which must have succeeded), its project, model version, candidates and
    their images, detached from the session."""
    with runtime.session_factory() as session:
        round_ = session.get(Round, round_id)
        project = session.get(Project, project_id)
        assert round_ is not None and project is not None and round_.model_version_id
        assert round_.status.value == "succeeded", round_.error
        version = session.get(ModelVersion, round_.model_version_id)
        assert version is not None
        candidates = list(session.scalars(select(Candidate).where(Candidate.round_id == round_id)))
        images = {c.image_id: session.get(Image, c.image_id) for c in candidates}
        session.expunge_all()
    return round_, project, version, candidates, images


@pytest.mark.slow
def test_a_round_with_peer_maps_matches_the_mean_of_every_policys_map(
    runtime: Runtime, client: TestClient
) -> None:
    project_id, round_id = _run_round(runtime, client)
    round_, project, version, candidates, images = _finished_round(runtime, project_id, round_id)
    assert round_.settings["effective"]["peer_maps"] is True
    chosen = version.metrics["augment_choice"]["chosen"]
    peers = version.metrics["peers"]
    assert [p["augment"] for p in peers] == [p for p in ("same", "strong_all") if p != chosen]
    assert runtime.storage.exists(peers[0]["checkpoint_key"])
    # one validation label cannot show the peer worse than the chosen model: it is kept
    (screen,) = version.metrics["peer_screen"]
    assert screen["policy"] == peers[0]["augment"] and screen["kept"] is True
    assert screen["images"] == version.metrics["val_images"] < MIN_IMAGES_TO_SCREEN
    assert (
        peers[0]["val_dice"] == version.metrics["augment_choice"]["val_dice"][peers[0]["augment"]]
    )
    assert len(candidates) == UNLABELED

    # a resumed attempt loads the registered model and its peer instead of training
    class Quiet:
        """The part of a JobContext a RoundTracker uses, outside a job."""

        def __init__(self) -> None:
            self.runtime = runtime

        def progress(self, fraction: float, message: str | None = None) -> None:
            pass

    config = ModelConfig.from_dict(round_.settings["effective"]["model"])
    tracker = RoundTracker(Quiet(), round_id, min_interval=0.0)  # type: ignore[arg-type]
    models = train_or_resume(runtime, round_id, project, config, tracker, peer_maps=True)
    assert models.version_id == version.id and len(models.all) == 2

    method = RoundConfig(model=config, knowledge=tuple(project_knowledge(project)))
    moved = 0
    for candidate in candidates:
        image = images[candidate.image_id]
        assert image is not None
        rgb = load_rgb(runtime, image)
        maps = [predict_probabilities(m, [rgb], config, flip_tta=True)[0] for m in models.all]
        proposals = proposals_for(runtime, image, round_.settings["effective"]["proposals"])
        mean_score = construct_annotation(proposals, mean_map(maps), method).score
        alone_score = construct_annotation(proposals, maps[0], method).score
        assert candidate.score == pytest.approx(mean_score, abs=1e-6)
        moved += abs(mean_score - alone_score) > 1e-6
    # two differently trained models: the mean map moves the score of some image
    assert moved >= 1


@pytest.mark.slow
def test_a_peer_left_out_is_neither_stored_nor_matched_against(
    runtime: Runtime, client: TestClient, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # the verdict is forced here: which tiny model validates worse is not up to the test
    verdicts: list[PeerScreen] = []

    def leave_out(
        chosen: object, peers: Mapping[str, object], val: Sequence[object]
    ) -> tuple[dict[str, object], list[PeerScreen]]:
        verdicts.extend(PeerScreen(p, False, len(val), -0.2, -0.05) for p in peers)
        return {}, verdicts

    monkeypatch.setattr(workers.rounds.training, "screen_peers", leave_out)
    project_id, round_id = _run_round(runtime, client)
    round_, project, version, candidates, images = _finished_round(runtime, project_id, round_id)
    assert len(verdicts) == 1
    assert version.metrics["peer_screen"] == [verdicts[0].to_dict()]
    assert version.metrics["peers"] == []
    assert not any("-peer-" in key for key in runtime.storage.list_keys("models/"))
    config = ModelConfig.from_dict(round_.settings["effective"]["model"])
    stored = tmp_path / "model.pt"
    stored.write_bytes(runtime.storage.get(version.checkpoint_key))
    model, _ = load_checkpoint(stored, device="cpu")
    method = RoundConfig(model=config, knowledge=tuple(project_knowledge(project)))
    for candidate in candidates:
        image = images[candidate.image_id]
        assert image is not None
        alone = predict_probabilities(model, [load_rgb(runtime, image)], config, flip_tta=True)
        proposals = proposals_for(runtime, image, round_.settings["effective"]["proposals"])
        score = construct_annotation(proposals, alone[0], method).score
        assert candidate.score == pytest.approx(score, abs=1e-6)
