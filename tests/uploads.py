"""Helpers for API tests: real images from the shared data, and state snapshots."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from fastapi.testclient import TestClient
from PIL import Image as PILImage
from sqlalchemy import func, select

from app.models import Image, Job, Label
from app.runtime import Runtime
from tests.shared_data import shared_data


def real_image(dataset: str = "kvasir_seg", index: int = 0) -> tuple[Path, Path]:
    """(image path, mask path) of the index-th pair of a shared data set, sorted by name."""
    images = sorted(shared_data(dataset, "images").iterdir())
    image = images[index]
    return image, shared_data(dataset, "masks", f"{image.stem}.png")


def png_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    PILImage.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def create_project(client: TestClient, name: str = "polyps", **extra: object) -> dict[str, object]:
    response = client.post("/api/v1/projects", json={"name": name, **extra})
    assert response.status_code == 201, response.text
    body: dict[str, object] = response.json()
    return body


def upload(client: TestClient, project_id: object, path: Path) -> dict[str, object]:
    with path.open("rb") as handle:
        response = client.post(
            f"/api/v1/projects/{project_id}/images", files={"file": (path.name, handle)}
        )
    assert response.status_code in (200, 201), response.text
    body: dict[str, object] = response.json()
    return body


def state_snapshot(runtime: Runtime) -> tuple[int, int, int, list[str]]:
    """Row counts of images, labels and jobs, plus every storage key: 'nothing changed'."""
    with runtime.session_factory() as session:
        counts = [
            session.scalar(select(func.count()).select_from(model)) or 0
            for model in (Image, Label, Job)
        ]
    return counts[0], counts[1], counts[2], runtime.storage.list_keys()
