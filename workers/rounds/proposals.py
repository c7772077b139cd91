"""Region proposals as work of their own: one job per image, cached in storage by image hash,
source and settings, so any worker can compute them (while another trains) and every later
round reuses them."""

from __future__ import annotations

import hashlib
import io
import json
import time
from functools import lru_cache
from typing import Any

import numpy as np
from sqlalchemy import select

from app.db import session_scope
from app.models import Image, Job, JobStatus, Project, Round
from app.runtime import Runtime
from app.services.dispatch import dispatch_jobs
from app.services.jobs import FINISHED, create_job
from app.services.proposal_settings import resolve_proposal_settings
from samdsk.proposals import ProposalSource, build_proposal_source
from samdsk.types import Proposals
from workers.rounds.data import load_rgb
from workers.runner import JobContext, raise_if_stopping, run_job

PROPOSALS_KIND = "proposals"


def proposal_settings(
    runtime: Runtime, project: Project, overrides: dict[str, Any]
) -> dict[str, Any]:
    """The proposal source of a round: SAM when a checkpoint is configured, else offline;
    a SAM source ("sam" or "sam_fast") runs the server's checkpoint."""
    return resolve_proposal_settings(runtime.settings, project.proposal_settings, overrides)


@lru_cache(maxsize=4)
def _source(frozen: str) -> ProposalSource:
    settings = json.loads(frozen)
    return build_proposal_source(settings.pop("source"), **settings)


def proposal_source(settings: dict[str, Any]) -> ProposalSource:
    """One source per settings per process: a SAM model is loaded once, not per image. The
    settings are JSON (lists among them), so their JSON text is the key."""
    return _source(json.dumps(settings, sort_keys=True))


def cache_key(content_hash: str, source: ProposalSource) -> str:
    settings = hashlib.sha256(source.settings_key().encode()).hexdigest()[:16]
    return f"proposals/{content_hash[:2]}/{content_hash}/{source.name}-{settings}.npz"


def save_proposals(runtime: Runtime, key: str, proposals: Proposals) -> None:
    buffer = io.BytesIO()
    np.savez_compressed(
        buffer,
        packed=np.packbits(proposals.masks, axis=-1),
        shape=np.array(proposals.masks.shape),
        scores=proposals.scores,
    )
    runtime.storage.put_at(key, buffer.getvalue())


def load_proposals(runtime: Runtime, key: str, source: ProposalSource) -> Proposals | None:
    if not runtime.storage.exists(key):
        return None
    with np.load(io.BytesIO(runtime.storage.get(key))) as data:
        count, height, width = (int(v) for v in data["shape"])
        masks = np.unpackbits(data["packed"], axis=-1, count=width).astype(bool)
        return Proposals(
            masks=masks.reshape(count, height, width), scores=data["scores"], source=source.name
        )


def proposals_for(runtime: Runtime, image: Image, settings: dict[str, Any]) -> Proposals:
    """Cached proposals of one image, computed and stored on a miss."""
    source = proposal_source(settings)
    key = cache_key(image.content_hash, source)
    cached = load_proposals(runtime, key, source)
    if cached is not None:
        return cached
    proposals = source.propose(load_rgb(runtime, image))
    save_proposals(runtime, key, proposals)
    return proposals


def compute_proposals_job(runtime: Runtime, job: Job, context: JobContext) -> str:
    """Handler of a per-image proposal job (idempotent: a cached result is reused)."""
    with session_scope(runtime.session_factory) as session:
        image = session.get(Image, job.image_id)
        if image is None:
            return "image no longer exists"
        session.expunge(image)
    proposals = proposals_for(runtime, image, dict(job.payload["settings"]))
    return f"{len(proposals)} proposals"


def fan_out(
    runtime: Runtime, round_: Round, image_ids: list[int], settings: dict[str, Any]
) -> list[int]:
    """One proposal job per image that has none yet for this round; returns their ids."""
    with session_scope(runtime.session_factory) as session:
        existing = set(
            session.scalars(
                select(Job.image_id).where(Job.round_id == round_.id, Job.kind == PROPOSALS_KIND)
            )
        )
        jobs = [
            create_job(
                session=session,
                kind=PROPOSALS_KIND,
                project_id=round_.project_id,
                image_id=image_id,
                round_id=round_.id,
                payload={"settings": settings},
            )
            for image_id in image_ids
            if image_id not in existing
        ]
        session.flush()
        created = [(job.id, PROPOSALS_KIND) for job in jobs]
        all_ids = list(
            session.scalars(
                select(Job.id).where(Job.round_id == round_.id, Job.kind == PROPOSALS_KIND)
            )
        )
    dispatch_jobs(session_factory=runtime.session_factory, queue=runtime.queue, jobs=created)
    return all_ids


def work_through(runtime: Runtime, job_ids: list[int], report: Any) -> None:
    """Run the round's proposal jobs that no other worker has taken, then wait for the rest.
    With one worker the round computes them all itself; with more, they share the work."""
    while True:
        with session_scope(runtime.session_factory) as session:
            rows = session.execute(select(Job.id, Job.status).where(Job.id.in_(job_ids))).all()
        done = sum(status is JobStatus.SUCCEEDED for _, status in rows)
        failed = [
            job_id for job_id, status in rows if status in (JobStatus.FAILED, JobStatus.CANCELLED)
        ]
        if failed:
            raise RuntimeError(f"proposal jobs {failed[:5]} failed; see their errors")
        report(done / max(len(job_ids), 1))
        if done == len(job_ids):
            return
        unfinished = [job_id for job_id, status in rows if status not in FINISHED]
        for job_id in unfinished:
            raise_if_stopping()  # a stopping worker takes no more images, only hands back
            # Claims only jobs that are queued or whose worker died (expired lease).
            if run_job(runtime, job_id, lambda job, ctx: compute_proposals_job(runtime, job, ctx)):
                break  # re-read: report progress and notice cancellation between images
        else:
            time.sleep(1.0)  # the rest run on live workers elsewhere
