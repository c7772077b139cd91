"""A whole round as one resumable job: each stage's result is stored before the next begins
(model version, cached proposals, one candidate per image), so a worker that takes over a
round whose worker died continues where it stopped."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select

from app.db import session_scope
from app.models import Candidate, CandidateStatus, Job, Label, Project, Round, RoundStatus, utcnow
from app.runtime import Runtime
from app.services.labels import LIVE, supersede_pending
from app.services.model_settings import round_model_settings
from app.services.review import accept_above
from samdsk.model import ModelConfig
from samdsk.model.config import AUTO_AUGMENT
from workers.rounds.data import current_labels, unlabeled_image_ids
from workers.rounds.matching import MatchContext, match_pool
from workers.rounds.proposals import fan_out, proposal_settings, proposal_source, work_through
from workers.rounds.snapshots import discard_snapshots
from workers.rounds.tracker import RoundTracker
from workers.rounds.training import train_or_resume
from workers.runner import JobCancelled, JobContext, LeaseLost

log = logging.getLogger(__name__)
DEFAULT_THRESHOLD = 0.9
PENDING = CandidateStatus.PENDING


def _effective_settings(
    runtime: Runtime, project: Project, requested: dict[str, Any]
) -> dict[str, Any]:
    """What this round runs with, fixed at its first start so a resumed attempt matches."""
    model = round_model_settings(project, requested.get("model", {}))
    if runtime.settings.encoder_weights and "encoder_weights_path" not in model:
        model["encoder_weights_path"] = str(runtime.settings.encoder_weights)
    config = ModelConfig.from_dict(model)
    proposals = proposal_settings(runtime, project, requested.get("proposals", {}))
    peer_maps = requested.get("peer_maps")
    return {
        "model": config.to_dict(),
        "proposals": proposals,
        "proposal_source": proposal_source(proposals).describe(),
        "threshold": float(requested.get("threshold", DEFAULT_THRESHOLD)),
        # None (not given) is the default: under "auto", match against every policy's model
        "peer_maps": config.machine_augment == AUTO_AUGMENT and peer_maps is not False,
    }


def _begin(runtime: Runtime, round_id: int) -> tuple[Project, dict[str, Any], list[int]]:
    with session_scope(runtime.session_factory) as session:
        round_ = session.get(Round, round_id)
        assert round_ is not None
        if round_.cancel_requested:
            raise JobCancelled(f"round {round_.number} was cancelled")
        project = session.get(Project, round_.project_id)
        assert project is not None
        if "effective" not in round_.settings:
            effective = _effective_settings(runtime, project, round_.settings)
            round_.settings = {**round_.settings, "effective": effective}
            round_.counts = {"labeled_at_start": len(current_labels(session, project))}
        round_.status = RoundStatus.RUNNING
        round_.started_at = round_.started_at or utcnow()
        round_.attempt_started_at = utcnow()
        round_.attempt_progress = round_.progress
        pool = unlabeled_image_ids(session, project)
        session.expunge(project)
        return project, dict(round_.settings["effective"]), pool


def run_round_job(runtime: Runtime, job: Job, context: JobContext) -> str:
    """Handler of a ``round`` job."""
    assert job.round_id is not None
    round_id = job.round_id
    tracker = RoundTracker(context, round_id)
    try:
        project, effective, pool = _begin(runtime, round_id)
        log.info("round %s: proposals from %s", round_id, effective["proposal_source"])
        with session_scope(runtime.session_factory) as session:
            round_ = session.get(Round, round_id)
            assert round_ is not None
            proposal_jobs = fan_out(runtime, round_, pool, effective["proposals"])
        config = ModelConfig.from_dict(effective["model"])
        # a round whose settings were fixed before peer maps existed matches one model's maps
        peer_maps = bool(effective.get("peer_maps", False))
        models = train_or_resume(runtime, round_id, project, config, tracker, peer_maps=peer_maps)
        tracker.begin("propose")
        work_through(runtime, proposal_jobs, lambda f: tracker.update("propose", f))
        tracker.end("propose")
        ctx = MatchContext(
            round_id, models.version_id, project, config, effective["proposals"], pool
        )
        match_pool(runtime, ctx, models.all, tracker)
        tracker.begin("rank")
        summary = _rank(runtime, round_id, project, effective["threshold"], ctx.skipped_rejected)
        tracker.end("rank")
        _close(runtime, round_id, RoundStatus.SUCCEEDED, summary=summary)
        return f"{summary['candidates']} candidates, {summary['above_threshold']} above threshold"
    except LeaseLost:
        raise
    except JobCancelled:
        _close(runtime, round_id, RoundStatus.CANCELLED)
        raise
    except Exception as exc:
        _close(runtime, round_id, RoundStatus.FAILED, error=f"{type(exc).__name__}: {exc}")
        raise


def _rank(
    runtime: Runtime, round_id: int, project: Project, threshold: float, skipped: list[int]
) -> dict[str, Any]:
    with session_scope(runtime.session_factory) as session:
        candidates = list(
            session.scalars(
                select(Candidate)
                .where(Candidate.round_id == round_id)
                .order_by(Candidate.score.desc(), Candidate.id)
            )
        )
        for rank, candidate in enumerate(candidates, start=1):
            candidate.rank = rank
        ranking = session.get(Round, round_id)
        assert ranking is not None
        round_number = ranking.number
        # Earlier rounds' undecided candidates for the same images are replaced by these.
        supersede_pending(
            session,
            Candidate.project_id == project.id,
            Candidate.round_id != round_id,
            Candidate.image_id.in_([c.image_id for c in candidates]),
            reason=f"round {round_number} made a newer candidate for the image",
        )
        # An image labelled while the round ran has its label: no candidate to review.
        labelled = set(
            session.scalars(
                select(Label.image_id).where(
                    LIVE,
                    Label.image_id.in_([c.image_id for c in candidates if c.status is PENDING]),
                )
            )
        )
        for candidate in candidates:
            if candidate.image_id in labelled and candidate.status is PENDING:
                candidate.status = CandidateStatus.SUPERSEDED
                candidate.decided_at = utcnow()
                candidate.reason = f"image {candidate.image_id} was labelled during the round"
        auto = 0
        if project.auto_accept_threshold is not None:
            fresh = session.get(Project, project.id)
            assert fresh is not None
            auto = accept_above(
                session=session,
                storage=runtime.storage,
                project=fresh,
                threshold=project.auto_accept_threshold,
                user=None,
                ranking_round_id=round_id,
            )
        scores = [c.score for c in candidates]
        return {
            "candidates": len(candidates),
            "above_threshold": sum(score >= threshold for score in scores),
            "mean_score": sum(scores) / len(scores) if scores else None,
            "skipped_rejected": len(skipped),
            "auto_accepted": auto,
        }


def _close(
    runtime: Runtime,
    round_id: int,
    status: RoundStatus,
    *,
    summary: dict[str, Any] | None = None,
    error: str | None = None,
) -> None:
    with session_scope(runtime.session_factory) as session:
        round_ = session.get(Round, round_id)
        if round_ is None:
            return
        discard_snapshots(runtime, round_.project_id, round_.number)
        if status is not RoundStatus.SUCCEEDED:
            # what it made is unranked and incomplete: not for review, ever
            supersede_pending(
                session,
                Candidate.round_id == round_id,
                reason=f"round {round_.number} was {status.value}",
            )
        round_.status = status
        round_.stage = status.value
        round_.finished_at = utcnow()
        round_.error = error
        if summary is not None:
            round_.counts = {**round_.counts, **summary}
            round_.added_nothing = summary["above_threshold"] == 0
            round_.progress = 1.0
