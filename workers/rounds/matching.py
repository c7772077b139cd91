"""Stage 3 of a round: the model's probability map of every unlabeled image, matched against
its proposals under the project's image-level knowledge: one candidate per image, stored as
it is made, so a resumed round skips what is done."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app.db import session_scope
from app.imaging import mask_to_png
from app.models import Candidate, CandidateStatus, Image, Project
from app.runtime import Runtime
from app.services.review import mask_dice
from samdsk.knowledge import ClassKnowledge
from samdsk.model import ModelConfig, predict_probabilities
from samdsk.rounds import RoundConfig, construct_annotation, mean_map
from workers.rounds.data import load_mask, load_rgb, mask_hash
from workers.rounds.proposals import proposals_for
from workers.rounds.tracker import RoundTracker

# Foreground Dice from which a new candidate counts as a rejected mask drawn again.
REJECTED_LIKENESS = 0.95


@dataclass
class MatchContext:
    round_id: int
    model_version_id: int
    project: Project
    config: ModelConfig
    proposal_settings: dict[str, Any]
    pool: list[int]
    skipped_rejected: list[int] = field(default_factory=list)


def project_knowledge(project: Project) -> list[ClassKnowledge]:
    return [ClassKnowledge.from_dict(project.knowledge[name]) for name in project.class_names]


def _already_done(runtime: Runtime, ctx: MatchContext) -> tuple[set[int], dict[int, list[str]]]:
    """(images of the pool with this round's candidate, rejected mask keys per image)."""
    with session_scope(runtime.session_factory) as session:
        done = set(
            session.scalars(select(Candidate.image_id).where(Candidate.round_id == ctx.round_id))
        )
        rejected: dict[int, list[str]] = {}
        for image_id, key in session.execute(
            select(Candidate.image_id, Candidate.mask_key).where(
                Candidate.project_id == ctx.project.id,
                Candidate.status == CandidateStatus.REJECTED,
            )
        ):
            rejected.setdefault(image_id, []).append(key)
    return done, rejected


def _like_a_rejected(
    runtime: Runtime, image: Image, mask: np.ndarray, rejected_keys: list[str], classes: int
) -> bool:
    """Whether ``mask`` is, but for a few pixels, a mask a reviewer rejected for this image:
    a next round's model often draws the same region again, a pixel or two apart."""
    for key in rejected_keys:
        rejected = load_mask(runtime, key, image, classes)
        if np.array_equal(rejected, mask) or mask_dice(rejected, mask) >= REJECTED_LIKENESS:
            return True
    return False


def match_pool(
    runtime: Runtime, ctx: MatchContext, models: Sequence[torch.nn.Module], tracker: RoundTracker
) -> None:
    """One candidate per image of the pool, matched against the mean of ``models``' maps (the
    round's model, then its peers with peer maps on)."""
    method = RoundConfig(model=ctx.config, knowledge=tuple(project_knowledge(ctx.project)))
    done, rejected = _already_done(runtime, ctx)
    tracker.begin("match")
    for position, image_id in enumerate(ctx.pool):
        if image_id in done:
            continue
        with session_scope(runtime.session_factory) as session:
            image = session.get(Image, image_id)
            if image is None or image.archived_at is not None:
                continue  # archived since the round began: it is proposed no label
            session.expunge(image)
        rgb = load_rgb(runtime, image)
        maps = [
            predict_probabilities(model, [rgb], ctx.config, flip_tta=method.flip_tta)[0]
            for model in models
        ]
        probability = maps[0] if len(maps) == 1 else mean_map(maps)
        proposals = proposals_for(runtime, image, ctx.proposal_settings)
        match = construct_annotation(proposals, probability, method)
        digest = mask_hash(match.class_mask)
        classes = len(ctx.project.class_names)
        if _like_a_rejected(runtime, image, match.class_mask, rejected.get(image_id, []), classes):
            # A reviewer already rejected this mask for this image: do not ask again.
            ctx.skipped_rejected.append(image_id)
        else:
            _store(runtime, ctx, image, match, digest)
        tracker.update("match", (position + 1) / len(ctx.pool))
    tracker.end("match")


def _store(runtime: Runtime, ctx: MatchContext, image: Image, match: Any, digest: str) -> None:
    key = runtime.storage.put_content(mask_to_png(match.class_mask), suffix=".png")
    chosen = {
        name: {"proposals": list(m.chosen), "score": m.score, "solver": m.solver}
        for name, m in zip(ctx.project.class_names, match.per_class, strict=True)
    }
    try:
        with session_scope(runtime.session_factory) as session:
            session.add(
                Candidate(
                    project_id=ctx.project.id,
                    round_id=ctx.round_id,
                    image_id=image.id,
                    model_version_id=ctx.model_version_id,
                    mask_key=key,
                    mask_hash=digest,
                    score=float(match.score),
                    chosen=chosen,
                    foreground_fraction=float((match.class_mask > 0).mean()),
                )
            )
    except IntegrityError:
        pass  # another attempt of this round stored it first: one candidate per image
