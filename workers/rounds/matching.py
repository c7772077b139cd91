"""Stage 3 of a round: the model's probability map of every unlabeled image, matched against
its proposals under the project's image-level knowledge: one candidate per image, stored as
it is made, so a resumed round skips what is done."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app.db import session_scope
from app.imaging import mask_to_png
from app.models import Candidate, CandidateStatus, Image, Project
from app.runtime import Runtime
from samdsk.knowledge import ClassKnowledge
from samdsk.model import ModelConfig, predict_probabilities
from samdsk.rounds import RoundConfig, construct_annotation, mean_map
from workers.rounds.data import load_rgb, mask_hash
from workers.rounds.proposals import proposals_for
from workers.rounds.tracker import RoundTracker


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


def _already_done(runtime: Runtime, ctx: MatchContext) -> tuple[set[int], set[tuple[int, str]]]:
    with session_scope(runtime.session_factory) as session:
        done = set(
            session.scalars(select(Candidate.image_id).where(Candidate.round_id == ctx.round_id))
        )
        rejected = {
            (image_id, digest)
            for image_id, digest in session.execute(
                select(Candidate.image_id, Candidate.mask_hash).where(
                    Candidate.project_id == ctx.project.id,
                    Candidate.status == CandidateStatus.REJECTED,
                )
            )
        }
    return done, rejected


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
            if image is None:
                continue
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
        if (image_id, digest) in rejected:
            # A reviewer already rejected exactly this mask for this image: do not ask again.
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
