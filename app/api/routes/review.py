"""Review: the ranked queue of machine-label candidates and the decisions on them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Query, Request, Response, UploadFile

from app.api.conditional import unchanged, validators
from app.api.deps import (
    CurrentUser,
    PaginationDep,
    ProjectReviewer,
    ProjectViewer,
    SessionDep,
    SettingsDep,
    StorageDep,
)
from app.api.params import IdPath
from app.api.uploads import read_capped
from app.imaging import decode_image, encode_png, to_display_rgb8
from app.imaging.overlay import render_overlay
from app.models import MAX_DB_INT, Candidate, CandidateStatus, Image, Label, Project, Role, Round
from app.schemas import LabelPublic, Page
from app.schemas_review import (
    AcceptAboveRequest,
    AcceptAboveResult,
    CandidatePublic,
    RejectRequest,
    ReviewQueuePublic,
)
from app.services import review as service
from app.services.audit import record
from app.services.labels import check_mask
from app.services.members import effective_role

router = APIRouter(prefix="/projects/{project_id}", tags=["review"])

RoundQuery = Annotated[int | None, Query(ge=1, le=MAX_DB_INT, description="Only this round")]
# A cursor holds a score and an id: some 70 characters. Far longer ones are not ours.
MAX_CURSOR_LENGTH = 256


def candidate_public(candidate: Candidate, round_number: int) -> CandidatePublic:
    public = CandidatePublic.model_validate(candidate)
    base = f"/api/v1/projects/{candidate.project_id}"
    public.round_number = round_number
    public.image_url = f"{base}/images/{candidate.image_id}/file"
    public.mask_url = f"{base}/candidates/{candidate.id}/mask"
    public.overlay_url = f"{base}/candidates/{candidate.id}/overlay"
    return public


def _round_number(session: SessionDep, candidate: Candidate) -> int:
    round_ = session.get(Round, candidate.round_id)
    return round_.number if round_ else 0


def _audit(
    session: SessionDep, user: CurrentUser, project: Project, candidate: Candidate, action: str
) -> None:
    record(
        session=session,
        actor=user,
        action=action,
        target_type="candidate",
        target_id=candidate.id,
        project_id=project.id,
        details={
            "image_id": candidate.image_id,
            "score": candidate.score,
            "reason": candidate.reason,
            "edit_dice": candidate.edit_dice,
        },
    )


@router.get("/review-queue", response_model=ReviewQueuePublic)
def get_review_queue(
    project: ProjectViewer,
    session: SessionDep,
    round: RoundQuery = None,
    min_score: Annotated[float, Query(ge=0.0, le=1.0)] = 0.0,
    max_score: Annotated[float, Query(ge=0.0, le=1.0)] = 1.0,
    empty: Annotated[
        bool | None, Query(description="only empty annotations (true) or only non-empty (false)")
    ] = None,
    cursor: Annotated[
        str | None,
        Query(max_length=MAX_CURSOR_LENGTH, description="next_cursor of the previous page"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> ReviewQueuePublic:
    """Pending candidates ranked by match score (highest first, stable order)."""
    filters = service.QueueFilter(
        round_number=round, min_score=min_score, max_score=max_score, empty=empty
    )
    page, count, following = service.review_queue(
        session=session, project=project, filters=filters, cursor=cursor, limit=limit
    )
    return ReviewQueuePublic(
        data=[candidate_public(c, r.number) for c, r in page], count=count, next_cursor=following
    )


@router.post("/review-queue/accept-above", response_model=AcceptAboveResult)
def accept_above_threshold(
    body: AcceptAboveRequest,
    project: ProjectReviewer,
    user: CurrentUser,
    session: SessionDep,
    storage: StorageDep,
) -> AcceptAboveResult:
    """Accept every pending candidate scoring at least ``threshold``, in one transaction;
    empty annotations only with ``include_empty``."""
    count = service.accept_above(
        session=session,
        storage=storage,
        project=project,
        threshold=body.threshold,
        user=user,
        include_empty=body.include_empty,
    )
    record(
        session=session,
        actor=user,
        action="candidate.accept_above",
        target_type="project",
        target_id=project.id,
        project_id=project.id,
        details={
            "threshold": body.threshold,
            "include_empty": body.include_empty,
            "accepted": count,
        },
    )
    return AcceptAboveResult(accepted=count)


@router.get("/candidates", response_model=Page[CandidatePublic])
def list_candidates(
    project: ProjectViewer,
    session: SessionDep,
    page: PaginationDep,
    status: Annotated[CandidateStatus | None, Query(description="Only candidates in it")] = None,
    round: RoundQuery = None,
) -> Page[CandidatePublic]:
    """Every candidate, decided or not, newest first: with the decision, who made it and
    when, and a rejection's reason."""
    rows, count = service.list_candidates(
        session=session,
        project=project,
        status=status,
        round_number=round,
        offset=page.offset,
        limit=page.limit,
    )
    return Page(
        data=[candidate_public(c, r.number) for c, r in rows],
        count=count,
        offset=page.offset,
        limit=page.limit,
    )


@router.get("/candidates/{candidate_id}", response_model=CandidatePublic)
def get_candidate(
    candidate_id: IdPath, project: ProjectViewer, session: SessionDep
) -> CandidatePublic:
    candidate = service.get_candidate(session=session, project=project, candidate_id=candidate_id)
    return candidate_public(candidate, _round_number(session, candidate))


@router.get("/candidates/{candidate_id}/mask", response_class=Response)
def get_candidate_mask(
    candidate_id: IdPath,
    request: Request,
    project: ProjectViewer,
    session: SessionDep,
    storage: StorageDep,
) -> Response:
    """The constructed annotation as a PNG of class indices (0 = background); ETag and 304
    as for a label version's mask."""
    candidate = service.get_candidate(session=session, project=project, candidate_id=candidate_id)
    tag = candidate.mask_key
    if (cached := unchanged(request, tag)) is not None:
        return cached
    content = storage.get(candidate.mask_key)
    return Response(content=content, media_type="image/png", headers=validators(tag))


@router.get("/candidates/{candidate_id}/overlay", response_class=Response)
def get_candidate_overlay(
    candidate_id: IdPath,
    project: ProjectViewer,
    session: SessionDep,
    storage: StorageDep,
    settings: SettingsDep,
) -> Response:
    """The image with the candidate mask drawn over it (fill and contour), as a PNG."""
    candidate = service.get_candidate(session=session, project=project, candidate_id=candidate_id)
    image = session.get(Image, candidate.image_id)
    assert image is not None
    decoded = decode_image(
        storage.get(image.storage_key),
        max_bytes=settings.max_upload_bytes,
        max_pixels=settings.max_image_pixels,
    )
    mask = check_mask(
        data=storage.get(candidate.mask_key),
        image=image,
        project=project,
        max_bytes=settings.max_upload_bytes,
    )
    return Response(
        content=encode_png(render_overlay(to_display_rgb8(decoded), mask)), media_type="image/png"
    )


def _decided_label(session: SessionDep, candidate: Candidate) -> LabelPublic:
    label = session.get(Label, candidate.label_id)
    assert label is not None  # repeated_decision found it current
    return LabelPublic.model_validate(label)


@router.post("/candidates/{candidate_id}/accept", response_model=LabelPublic)
def accept_candidate(
    candidate_id: IdPath,
    project: ProjectReviewer,
    user: CurrentUser,
    session: SessionDep,
    storage: StorageDep,
) -> LabelPublic:
    """Accept the machine label as it is: a new label version (source machine). 409 if the
    candidate was already decided, with who decided and how in ``details``; your own accept
    sent again (a retry) answers its label."""
    candidate = service.get_candidate(session=session, project=project, candidate_id=candidate_id)
    if service.repeated_decision(
        session=session, candidate=candidate, user=user, status=CandidateStatus.ACCEPTED
    ):
        return _decided_label(session, candidate)
    label = service.accept(
        session=session, storage=storage, project=project, candidate=candidate, user=user
    )
    _audit(session, user, project, candidate, "candidate.accept")
    return LabelPublic.model_validate(label)


@router.post("/candidates/{candidate_id}/reject", response_model=CandidatePublic)
def reject_candidate(
    candidate_id: IdPath,
    body: RejectRequest,
    project: ProjectReviewer,
    user: CurrentUser,
    session: SessionDep,
) -> CandidatePublic:
    """Reject with a reason; the same mask is not proposed for this image again. Your own
    rejection sent again (a retry) answers the candidate as it is, first reason kept."""
    candidate = service.get_candidate(session=session, project=project, candidate_id=candidate_id)
    if service.repeated_decision(
        session=session, candidate=candidate, user=user, status=CandidateStatus.REJECTED
    ):
        return candidate_public(candidate, _round_number(session, candidate))
    service.reject(session=session, candidate=candidate, user=user, reason=body.reason)
    _audit(session, user, project, candidate, "candidate.reject")
    return candidate_public(candidate, _round_number(session, candidate))


@router.post("/candidates/{candidate_id}/undo", response_model=CandidatePublic)
def undo_decision(
    candidate_id: IdPath,
    project: ProjectReviewer,
    user: CurrentUser,
    session: SessionDep,
) -> CandidatePublic:
    """Take back an accept, edit or reject: the candidate is pending again, and the label
    version an accept or edit made is retracted (kept in the image's history, marked with who
    and when). The decider or a project admin may, while that version is still the image's
    label; 409 otherwise, and for a candidate not decided."""
    candidate = service.get_candidate(session=session, project=project, candidate_id=candidate_id)
    previous, label_id = candidate.status.value, candidate.label_id
    admin = effective_role(session=session, user=user, project_id=project.id) is Role.ADMIN
    service.undo(session=session, candidate=candidate, user=user, may_undo_others=admin)
    record(
        session=session,
        actor=user,
        action="candidate.undo",
        target_type="candidate",
        target_id=candidate.id,
        project_id=project.id,
        details={"image_id": candidate.image_id, "undone": previous, "retracted_label": label_id},
    )
    return candidate_public(candidate, _round_number(session, candidate))


@router.post("/candidates/{candidate_id}/edit", response_model=LabelPublic)
def edit_candidate(
    candidate_id: IdPath,
    project: ProjectReviewer,
    user: CurrentUser,
    session: SessionDep,
    storage: StorageDep,
    settings: SettingsDep,
    file: Annotated[UploadFile, File(description="The corrected mask, same size as the image")],
) -> LabelPublic:
    """Save a corrected mask as a new label version (source edited), recording its Dice
    against the machine mask. Your own edit with the same mask sent again (a retry) answers
    its label."""
    candidate = service.get_candidate(session=session, project=project, candidate_id=candidate_id)
    image = session.get(Image, candidate.image_id)
    assert image is not None
    data = read_capped(file, settings.max_upload_bytes)
    mask = check_mask(data=data, image=image, project=project, max_bytes=settings.max_upload_bytes)
    if service.repeated_decision(
        session=session, candidate=candidate, user=user, status=CandidateStatus.EDITED, mask=mask
    ):
        return _decided_label(session, candidate)
    label = service.edit(
        session=session, storage=storage, project=project, candidate=candidate, user=user, mask=mask
    )
    _audit(session, user, project, candidate, "candidate.edit")
    return LabelPublic.model_validate(label)
