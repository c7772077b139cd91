"""Rounds and candidates made through the data layer, for review tests that need no training:
real images and masks, a registered model version, candidates with given scores."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image as PILImage

from app.db import session_scope
from app.imaging import mask_to_png
from app.models import Candidate, ModelVersion, Round, RoundStatus, utcnow
from app.runtime import Runtime
from workers.rounds.data import mask_hash


@dataclass(frozen=True)
class MadeRound:
    round_id: int
    number: int
    candidate_ids: list[int]


def make_round_with_candidates(
    runtime: Runtime,
    project_id: int,
    image_ids: list[int],
    scores: list[float],
    masks: list[np.ndarray],
    number: int = 1,
) -> MadeRound:
    """A finished round whose candidates carry ``masks`` (H x W class indices) and ``scores``."""
    with session_scope(runtime.session_factory) as session:
        round_ = Round(
            project_id=project_id,
            number=number,
            status=RoundStatus.SUCCEEDED,
            settings={},
            metrics={},
            stages={},
            counts={"labeled_at_start": 0, "candidates": len(image_ids)},
            finished_at=utcnow(),
        )
        session.add(round_)
        session.flush()
        version = ModelVersion(
            project_id=project_id,
            round_id=round_.id,
            number=number,
            checkpoint_key=f"models/project-{project_id}/round-{number}.pt",
            config={},
            metrics={},
        )
        session.add(version)
        session.flush()
        ids = []
        for rank, (image_id, score, mask) in enumerate(zip(image_ids, scores, masks, strict=True)):
            candidate = Candidate(
                project_id=project_id,
                round_id=round_.id,
                image_id=image_id,
                model_version_id=version.id,
                mask_key=runtime.storage.put_content(mask_to_png(mask), suffix=".png"),
                mask_hash=mask_hash(mask),
                score=score,
                rank=rank + 1,
                chosen={},
                foreground_fraction=float((mask > 0).mean()),
            )
            session.add(candidate)
            session.flush()
            ids.append(candidate.id)
        return MadeRound(round_.id, number, ids)


def truth_mask(path: object) -> np.ndarray:
    """A shared data set's 0/255 mask as class indices 0/1."""
    with PILImage.open(str(path)) as image:
        return (np.asarray(image.convert("L")) > 127).astype(np.uint8)
