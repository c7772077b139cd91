"""Predictions through the API with a real worker process and a real (tiny, untrained)
checkpoint: the mask and summary agree with the method library's own prediction, the PNG
form carries the summary in headers, a slow answer becomes 202 and a poll, a broken model
version is a clear error; no model is 409; a bad image is 4xx and changes nothing."""

from __future__ import annotations

import base64
import io
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient
from PIL import Image as PILImage
from scipy import ndimage

from app.cli import worker_command
from app.db import session_scope
from app.imaging import decode_image, to_display_rgb8
from app.main import create_app
from app.models import ModelVersion
from app.queue import celery_config
from app.runtime import Runtime, build_runtime
from app.settings import Settings
from samdsk.model import ModelConfig, build_model, predict_probabilities, save_checkpoint
from tests.accounts import bearer, make_user
from tests.test_app_bad_input import png_bomb
from tests.test_workers import REDIS_URL, _require_redis
from tests.uploads import create_project, real_image, state_snapshot
from tests.workers import WorkerProcess, wait_for

TINY = ModelConfig(encoder="mobilenet_v2", input_size=64, device="cpu", amp=False)


def register_tiny_model(runtime: Runtime, project_id: int, rgb: np.ndarray) -> torch.nn.Module:
    """An untrained model whose output bias is set so that about half of ``rgb`` is
    foreground (a mask worth checking), saved to storage and registered as version 1."""
    torch.manual_seed(0)
    model = build_model(TINY).eval()
    median = float(np.median(predict_probabilities(model, [rgb], TINY)[0]))
    with torch.no_grad():
        model.segmentation_head[0].bias -= float(np.log(median / (1 - median)))
    key = f"models/project-{project_id}/round-1.pt"
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.pt"
        save_checkpoint(path, model, TINY)
        runtime.storage.put_at(key, path.read_bytes())
    add_version(runtime, project_id, 1, key)
    return model


def add_version(runtime: Runtime, project_id: int, number: int, key: str) -> None:
    with session_scope(runtime.session_factory) as session:
        session.add(
            ModelVersion(
                project_id=project_id, number=number, checkpoint_key=key, config={}, metrics={}
            )
        )


def _predict(client: TestClient, project_id: int, data: bytes, **kwargs: object) -> httpx.Response:
    return client.post(
        f"/api/v1/projects/{project_id}/predict",
        files={"file": ("scan.jpg", data)},
        **kwargs,  # type: ignore[arg-type]
    )


def test_no_model_is_409_and_a_bad_image_is_4xx(client: TestClient, runtime: Runtime) -> None:
    project_id = int(create_project(client)["id"])  # type: ignore[call-overload]
    image = real_image("kvasir_seg", 0)[0].read_bytes()
    before = state_snapshot(runtime)
    response = _predict(client, project_id, image)
    assert response.status_code == 409, response.text
    assert "no trained model" in response.json()["error"]["message"]
    assert state_snapshot(runtime) == before
    add_version(runtime, project_id, 1, "models/never-read.pt")
    for data, status in (
        (b"not an image", 415),
        (image[: len(image) // 3], 422),
        (png_bomb(), 413),
    ):
        response = _predict(client, project_id, data)
        assert response.status_code == status, response.text
        assert response.json()["error"]["message"]
    assert _predict(client, project_id, image, params={"wait": 121}).status_code == 422
    assert state_snapshot(runtime) == before


def test_predictions_go_to_a_queue_of_their_own_that_workers_consume(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, queue_name="samdsk-a")
    routes = celery_config(settings)["task_routes"]
    assert routes["samdsk.predict"]["queue"] == f"{settings.queue_name}-interactive"
    assert "samdsk.round" not in routes  # rounds stay on the main queue
    assert f"--queues={settings.queue_name},{settings.queue_name}-interactive" in (
        worker_command(settings)
    )


def test_the_api_never_imports_torch() -> None:
    code = "import sys, app.main, app.api.routes.predictions; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "False", result.stderr


@pytest.fixture(params=["filesystem", "redis"])
def served(
    request: pytest.FixtureRequest, settings: Settings
) -> Iterator[tuple[Runtime, TestClient]]:
    """The API on the embedded broker, and on Redis when it answers (the queue names are
    set before the runtime's Celery client is made from them)."""
    if request.param == "redis":
        _require_redis()
        settings.broker_url = REDIS_URL
        settings.queue_name = f"samdsk-test-{uuid.uuid4().hex[:8]}"
    runtime = build_runtime(settings)
    _, token = make_user(runtime, "root", superuser=True)
    with TestClient(create_app(runtime=runtime), headers=bearer(token)) as client:
        yield runtime, client
    runtime.close()


@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_prediction_by_a_worker(
    served: tuple[Runtime, TestClient], settings: Settings, tmp_path: Path
) -> None:
    runtime, client = served
    project_id = int(create_project(client)["id"])  # type: ignore[call-overload]
    image = real_image("kvasir_seg", 5)[0].read_bytes()
    rgb = to_display_rgb8(decode_image(image, max_bytes=1 << 26, max_pixels=1 << 26))
    model = register_tiny_model(runtime, project_id, rgb)
    expected = predict_probabilities(model, [rgb], TINY)[0][0]
    before = state_snapshot(runtime)
    settings.worker_concurrency = 1  # one process: every prediction below shares its cache
    worker = WorkerProcess(settings, tmp_path / "worker.log")
    try:
        _check_json_answer(client, project_id, image, expected, rgb.shape[:2])
        _check_png_answer(client, project_id, image)
        _check_pending_then_poll(client, project_id, image, worker)
        assert worker.log().count("loaded model checkpoint") == 1  # 3 predictions, 1 load
        _check_broken_version(client, runtime, project_id, image)
    finally:
        worker.stop()
    assert state_snapshot(runtime)[:2] == before[:2]  # no image or label was added


def _check_json_answer(
    client: TestClient,
    project_id: int,
    image: bytes,
    expected: np.ndarray,
    shape: tuple[int, ...],
) -> None:
    response = _predict(client, project_id, image, params={"wait": 90})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["model_version"], body["status"], body["filename"]) == (1, "succeeded", "scan.jpg")
    assert (body["height"], body["width"]) == shape
    mask = np.asarray(PILImage.open(io.BytesIO(base64.b64decode(body["mask_png_base64"]))))
    assert mask.shape == shape and set(np.unique(mask)) <= {0, 1}
    # The worker's mask is the library's prediction of the same image (threads may differ).
    assert np.mean(mask != (expected > 0.5)) < 0.001
    (summary,) = body["classes"]
    assert summary["name"] == "foreground" and summary["index"] == 1
    assert 0.2 < summary["foreground_fraction"] < 0.8
    assert summary["foreground_fraction"] == pytest.approx(mask.mean(), abs=1e-9)
    assert summary["max_probability"] == pytest.approx(float(expected.max()), abs=1e-3)
    assert 0.5 < summary["mean_probability"] <= summary["max_probability"]
    assert summary["regions"] == ndimage.label(mask, structure=np.ones((3, 3)))[1]
    stored = client.get(body["mask_url"])
    assert stored.status_code == 200 and stored.headers["content-type"] == "image/png"
    assert stored.content == base64.b64decode(body["mask_png_base64"])


def _check_png_answer(client: TestClient, project_id: int, image: bytes) -> None:
    response = _predict(client, project_id, image, headers={"Accept": "image/png"})
    assert response.status_code == 200, response.text
    assert response.content.startswith(b"\x89PNG")
    headers = response.headers
    assert headers["x-samdsk-model-version"] == "1" and headers["x-samdsk-classes"] == "foreground"
    assert 0.2 < float(headers["x-samdsk-foreground-fraction"]) < 0.8
    assert int(headers["x-samdsk-regions"]) >= 1


def _check_pending_then_poll(
    client: TestClient, project_id: int, image: bytes, worker: WorkerProcess
) -> None:
    response = _predict(client, project_id, image, params={"wait": 0})
    assert response.status_code == 202, response.text
    pending = response.json()
    assert pending["status"] in ("queued", "running")
    assert response.headers["location"] == pending["poll_url"]
    wait_for(lambda: client.get(pending["poll_url"]).status_code == 200, 60, "poll", worker.log)
    done = client.get(pending["poll_url"]).json()
    assert done["job_id"] == pending["job_id"] and done["classes"][0]["regions"] >= 1
    other = client.get(f"/api/v1/projects/{project_id}/predictions/999999")
    assert other.status_code == 404


def _check_broken_version(
    client: TestClient, runtime: Runtime, project_id: int, image: bytes
) -> None:
    add_version(runtime, project_id, 2, "models/missing.pt")
    response = _predict(client, project_id, image, params={"wait": 60})
    assert response.status_code == 500, response.text
    error = response.json()["error"]
    assert error["code"] == "job_failed" and "models/missing.pt" in error["message"]
