"""Rounds: start (one at a time per project), read with progress and ETA, cancel."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.errors import Conflict, InvalidInput, NotFound
from app.models import Job, JobStatus, Project, Round, RoundStatus, User, utcnow
from app.services.jobs import create_job
from app.services.labels import count_labeled
from app.services.model_settings import check_client_model_settings
from app.services.proposal_settings import check_client_proposal_settings
from app.settings import Settings
from samdsk.model.config import AUTO_AUGMENT

ACTIVE = (RoundStatus.QUEUED, RoundStatus.RUNNING)
# train: the model; propose: region proposals per image (cached, shared by rounds); match:
# probability map, matching and the candidate of each image; rank: order and auto-accept.
STAGES = ("train", "propose", "match", "rank")
# Rough share of a round's time per stage, for overall progress before timings are known.
STAGE_WEIGHTS = {"train": 0.5, "propose": 0.3, "match": 0.15, "rank": 0.05}


def active_round(*, session: Session, project: Project) -> Round | None:
    return session.scalar(
        select(Round).where(Round.project_id == project.id, Round.status.in_(ACTIVE))
    )


def start_round(
    *,
    session: Session,
    project: Project,
    user: User,
    settings: dict[str, Any],
    server: Settings,
) -> tuple[Round, Job]:
    """Create round n+1 and its job; 409 while another round of the project is active or
    while it has no label to train on, 422 for model or proposal settings it could not run
    with on this server."""
    # The request's own problems first: a client that fixes them and retries once the active
    # round ends must not meet them then.
    model = check_client_model_settings(
        settings.get("model", {}),
        class_count=len(project.class_names),
        stored=project.model_settings,
    )
    check_client_proposal_settings(
        server, settings.get("proposals", {}), stored=project.proposal_settings
    )
    if settings.get("peer_maps") is True and model.machine_augment != AUTO_AUGMENT:
        raise InvalidInput(
            "peer_maps averages the models that model setting machine_augment 'auto' trains "
            f"under each perturbation policy; this round's machine_augment is "
            f"'{model.machine_augment}'"
        )
    running = active_round(session=session, project=project)
    if running is not None:
        raise Conflict(f"round {running.number} of this project is still {running.status.value}")
    if count_labeled(session=session, project=project) == 0:
        # the worker trains on every current label, whatever its source, and fails without one
        raise Conflict(
            "this project has no labeled images to train on: upload a mask for at least one "
            "image first"
        )
    number = (
        session.scalar(select(func.max(Round.number)).where(Round.project_id == project.id)) or 0
    ) + 1
    round_ = Round(
        project_id=project.id,
        number=number,
        settings=settings,
        metrics={},
        stages={stage: {"progress": 0.0, "seconds": 0.0} for stage in STAGES},
        counts={},
        created_by=user.username,
    )
    try:
        with session.begin_nested():
            session.add(round_)
            session.flush()
    except IntegrityError as exc:  # a concurrent start took this number
        raise Conflict("another round was started at the same moment") from exc
    job = create_job(session=session, kind="round", project_id=project.id, round_id=round_.id)
    round_.job_id = job.id
    return round_, job


def get_round(*, session: Session, project: Project, number: int) -> Round:
    round_ = session.scalar(
        select(Round).where(Round.project_id == project.id, Round.number == number)
    )
    if round_ is None:
        raise NotFound(f"project {project.id} has no round {number}")
    return round_


def list_rounds(*, session: Session, project: Project) -> list[Round]:
    return list(
        session.scalars(select(Round).where(Round.project_id == project.id).order_by(Round.number))
    )


def request_cancel(*, session: Session, round_: Round) -> Round:
    """Ask the round to stop. A queued round stops at once; a running one at its next check."""
    if round_.status not in ACTIVE:
        raise Conflict(f"round {round_.number} already {round_.status.value}")
    round_.cancel_requested = True
    if round_.status is RoundStatus.QUEUED:
        round_.status = RoundStatus.CANCELLED
        round_.finished_at = utcnow()
        round_.stage = "cancelled"
        job = session.get(Job, round_.job_id) if round_.job_id else None
        if job is not None and job.status is JobStatus.QUEUED:
            job.status = JobStatus.CANCELLED
            job.finished_at = utcnow()
            job.message = "cancelled before it started"
    return round_


def eta_seconds(round_: Round) -> float | None:
    """Remaining seconds, extrapolated from the current attempt's pace: the progress made since
    it began over the time it has run. A resumed round's earlier attempts and the time between
    them (a stopped service) do not count."""
    if round_.status is not RoundStatus.RUNNING:
        return None
    began = round_.attempt_started_at or round_.started_at
    if began is None:
        return None
    start_progress = round_.attempt_progress if round_.attempt_started_at else 0.0
    made = round_.progress - start_progress
    if made <= 0.02:
        return None
    elapsed = (utcnow() - began).total_seconds()
    return max(elapsed * (1.0 - round_.progress) / made, 0.0)


def overall_progress(stages: dict[str, Any]) -> float:
    done = sum(
        STAGE_WEIGHTS[name] * float(stages.get(name, {}).get("progress", 0.0)) for name in STAGES
    )
    return min(max(done, 0.0), 1.0)


def is_converged(*, session: Session, project: Project) -> bool:
    """The newest finished round found nothing to add."""
    last = session.scalar(
        select(Round)
        .where(Round.project_id == project.id, Round.status == RoundStatus.SUCCEEDED)
        .order_by(Round.number.desc())
        .limit(1)
    )
    return bool(last and last.added_nothing)
