"""Rounds: admins start and cancel them; members follow their progress and statistics."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request, Response, status
from sqlalchemy import func, select

from app.api.deps import CurrentUser, ProjectAdmin, ProjectViewer, RuntimeDep, SessionDep
from app.models import IMAGE_IN_USE, MAX_DB_INT, Candidate, Image, Round
from app.schemas_review import ProjectStatus, RoundCreate, RoundPublic
from app.services import rounds as service
from app.services.audit import record
from app.services.dispatch import dispatch_jobs
from app.services.labels import count_labeled
from app.services.review import awaiting_review, round_statistics

router = APIRouter(prefix="/projects/{project_id}", tags=["rounds"])
RoundPath = Annotated[int, Path(ge=1, le=MAX_DB_INT, description="Round number, from 1")]


def round_public(round_: Round) -> RoundPublic:
    public = RoundPublic.model_validate(round_)
    public.eta_seconds = service.eta_seconds(round_)
    return public


@router.post("/rounds", status_code=status.HTTP_201_CREATED, response_model=RoundPublic)
def start_round(
    body: RoundCreate,
    request: Request,
    response: Response,
    project: ProjectAdmin,
    user: CurrentUser,
    session: SessionDep,
    runtime: RuntimeDep,
) -> RoundPublic:
    """Start the next round; 409 while another round of the project is queued or running, or
    while none of its images has a label to train on. ``Location`` names the new round, to
    poll for progress."""
    round_, job = service.start_round(
        session=session,
        project=project,
        user=user,
        settings=body.model_dump(),
        server=runtime.settings,
    )
    record(
        session=session,
        actor=user,
        action="round.start",
        target_type="round",
        target_id=round_.id,
        project_id=project.id,
        details={"number": round_.number},
    )
    session.commit()
    dispatch_jobs(
        session_factory=runtime.session_factory, queue=runtime.queue, jobs=[(job.id, "round")]
    )
    where = request.url_for("get_round", project_id=project.id, number=round_.number)
    response.headers["Location"] = str(where)
    return round_public(round_)


@router.get("/rounds", response_model=list[RoundPublic])
def list_rounds(project: ProjectViewer, session: SessionDep) -> list[RoundPublic]:
    return [round_public(r) for r in service.list_rounds(session=session, project=project)]


@router.get("/rounds/{number}", response_model=RoundPublic)
def get_round(number: RoundPath, project: ProjectViewer, session: SessionDep) -> RoundPublic:
    """Status, stage, progress 0..1, ETA, counts and errors of one round."""
    return round_public(service.get_round(session=session, project=project, number=number))


@router.post("/rounds/{number}/cancel", response_model=RoundPublic)
def cancel_round(
    number: RoundPath, project: ProjectAdmin, user: CurrentUser, session: SessionDep
) -> RoundPublic:
    """Ask the round to stop: a queued one stops at once, a running one at its next check.
    Asking again while it stops answers the round as it is and records nothing new."""
    round_ = service.get_round(session=session, project=project, number=number)
    if round_.cancel_requested and round_.status in service.ACTIVE:
        return round_public(round_)
    service.request_cancel(session=session, round_=round_)
    record(
        session=session,
        actor=user,
        action="round.cancel",
        target_type="round",
        target_id=round_.id,
        project_id=project.id,
        details={"number": number},
    )
    return round_public(round_)


@router.get("/rounds/{number}/statistics")
def get_round_statistics(
    number: RoundPath, project: ProjectViewer, session: SessionDep
) -> dict[str, object]:
    """Candidates by decision, acceptance rate per score band, mean edit Dice."""
    round_ = service.get_round(session=session, project=project, number=number)
    return {"round": number, **round_statistics(session=session, round_=round_)}


@router.get("/status", response_model=ProjectStatus)
def get_project_status(project: ProjectViewer, session: SessionDep) -> ProjectStatus:
    """Labeled-set size (now and after each round), pending reviews, convergence."""
    images = session.scalar(
        select(func.count()).select_from(Image).where(Image.project_id == project.id, IMAGE_IN_USE)
    )
    pending = session.scalar(
        awaiting_review(select(func.count()).select_from(Candidate)).where(
            Candidate.project_id == project.id
        )
    )
    active = service.active_round(session=session, project=project)
    history = [
        {
            "round": r.number,
            "labeled_at_start": r.counts.get("labeled_at_start"),
            "status": r.status,
        }
        for r in service.list_rounds(session=session, project=project)
    ]
    return ProjectStatus(
        labeled=count_labeled(session=session, project=project),
        images=images or 0,
        pending_candidates=pending or 0,
        converged=service.is_converged(session=session, project=project),
        active_round=active.number if active else None,
        labeled_over_rounds=history,
    )
