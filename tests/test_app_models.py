"""Trained model versions through the API: listed with their settings and validation numbers,
and each checkpoint downloaded loads as the model the worker trained."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient
from PIL import Image as PILImage
from sqlalchemy import select

from app.db import session_scope
from app.models import ModelVersion
from app.runtime import Runtime
from samdsk.model.checkpoint import load_checkpoint
from tests.accounts import bearer, make_user
from tests.review_world import make_round_with_candidates, truth_mask
from tests.test_app_predict import TINY, register_tiny_model
from tests.uploads import create_project, real_image, upload

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def test_a_trained_model_is_listed_and_its_checkpoint_loads(
    client: TestClient, runtime: Runtime
) -> None:
    project_id = int(create_project(client)["id"])  # type: ignore[call-overload]
    base = f"/api/v1/projects/{project_id}/models"
    assert client.get(base).json() == []
    path, _ = real_image("kvasir_seg", 70)
    rgb = np.asarray(PILImage.open(path).convert("RGB").resize((64, 64)))
    trained = register_tiny_model(runtime, project_id, rgb)
    with session_scope(runtime.session_factory) as session:
        version = session.scalars(select(ModelVersion)).one()
        version.config = {**TINY.to_dict(), "encoder_weights_path": "/srv/weights/secret.pth"}
        version.metrics = {
            "val_dice": 0.81, "train_images": 12, "val_images": 3,
            "peers": [{"augment": "none", "val_dice": 0.7, "checkpoint_key": "models/x.pt"}],
        }  # fmt: skip
    listed = client.get(base).json()
    assert len(listed) == 1
    model = listed[0]
    assert (model["number"], model["val_dice"], model["round_number"]) == (1, 0.81, None)
    assert "encoder_weights_path" not in model["config"]  # the server's own paths stay in it
    assert model["config"]["encoder"] == TINY.encoder
    assert model["metrics"]["peers"] == [{"augment": "none", "val_dice": 0.7}]
    assert client.get(f"{base}/1").json() == model

    download = client.get(model["checkpoint_url"])
    assert download.status_code == 200
    assert download.headers["content-disposition"] == (
        f'attachment; filename="project-{project_id}-model-1.pt"'
    )
    with tempfile.TemporaryDirectory() as folder:
        saved = Path(folder) / "model.pt"
        saved.write_bytes(download.content)
        loaded, config = load_checkpoint(saved)
    assert config.encoder == TINY.encoder
    for name, tensor in trained.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], tensor.cpu()), name
    cached = client.get(
        model["checkpoint_url"], headers={"If-None-Match": download.headers["ETag"]}
    )
    assert cached.status_code == 304 and cached.content == b""
    head = client.head(model["checkpoint_url"])
    assert int(head.headers["Content-Length"]) == len(download.content) and head.content == b""


def test_model_versions_name_their_round_and_refuse_strangers(
    client: TestClient, runtime: Runtime
) -> None:
    project_id = int(create_project(client)["id"])  # type: ignore[call-overload]
    image_path, mask_path = real_image("kvasir_seg", 71)
    image_id = int(upload(client, project_id, image_path)["image"]["id"])  # type: ignore[index]
    for number in (1, 2):
        make_round_with_candidates(
            runtime, project_id, [image_id], [0.5], [truth_mask(mask_path)], number=number
        )
    base = f"/api/v1/projects/{project_id}/models"
    listed = client.get(base).json()
    assert [(m["number"], m["round_number"]) for m in listed] == [(2, 2), (1, 1)]
    assert client.get(f"{base}/3").status_code == 404
    assert client.get(f"{base}/0").status_code == 422
    _, stranger = make_user(runtime, "outsider")
    assert client.get(base, headers=bearer(stranger)).status_code == 404
    assert client.get(f"{base}/1/checkpoint", headers=bearer(stranger)).status_code == 404
    _, viewer = make_user(runtime, "watcher")
    assert client.put(
        f"/api/v1/projects/{project_id}/members/watcher", json={"role": "viewer"}
    ).is_success
    assert client.get(base, headers=bearer(viewer)).status_code == 200
