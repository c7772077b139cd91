"""Reading a project's images and labels into the arrays the method library takes."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.imaging import decode_image, decode_mask, to_display_rgb8
from app.models import IMAGE_IN_USE, Image, Label, LabelSource, Project
from app.runtime import Runtime
from app.services.labels import LIVE, is_current, newest_live_versions


@dataclass(frozen=True)
class LabeledImage:
    image_id: int
    source: LabelSource
    mask_key: str


def current_labels(session: Session, project: Project) -> list[LabeledImage]:
    """The newest label version of every labeled image of the project, by image id."""
    newest = newest_live_versions(Image.project_id == project.id, IMAGE_IN_USE)
    rows = session.execute(
        select(Label.image_id, Label.source, Label.mask_key)
        .join(newest, is_current(newest))
        .order_by(Label.image_id)
    )
    return [LabeledImage(image_id, source, key) for image_id, source, key in rows]


def unlabeled_image_ids(session: Session, project: Project) -> list[int]:
    labeled = select(Label.image_id).where(LIVE).distinct()
    return list(
        session.scalars(
            select(Image.id)
            .where(Image.project_id == project.id, IMAGE_IN_USE, Image.id.not_in(labeled))
            .order_by(Image.id)
        )
    )


def load_rgb(runtime: Runtime, image: Image) -> np.ndarray:
    """H x W x 3 uint8 RGB, as the browser shows it (16-bit windowed, grey repeated)."""
    decoded = decode_image(
        runtime.storage.get(image.storage_key),
        max_bytes=runtime.settings.max_upload_bytes,
        max_pixels=runtime.settings.max_image_pixels,
    )
    return to_display_rgb8(decoded)


def load_mask(runtime: Runtime, key: str, image: Image, num_classes: int) -> np.ndarray:
    """H x W uint8 class indices of a stored label or candidate mask."""
    data = runtime.storage.get(key)
    return decode_mask(
        data,
        width=image.width,
        height=image.height,
        num_classes=num_classes,
        max_bytes=len(data) + 1,
    )


def is_validation(image_id: int, fraction: float = 0.2) -> bool:
    """A stable, seedless split of human labels into training and validation: an image stays
    on the same side in every round."""
    digest = hashlib.sha256(f"val:{image_id}".encode()).digest()
    return digest[0] / 256.0 < fraction


def mask_hash(mask: np.ndarray) -> str:
    return hashlib.sha256(
        np.ascontiguousarray(mask).tobytes() + str(mask.shape).encode()
    ).hexdigest()
