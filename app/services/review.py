"""Review of machine-label candidates: the ranked queue and the decisions on it.

A decision is a compare-and-set on the candidate's status (pending -> decided), so two
reviewers deciding the same candidate cannot both win: the second gets 409. Accepting or
editing appends a label version with provenance; nothing is overwritten.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from dataclasses import dataclass
from typing import Any, TypeGuard, TypeVarTuple

import numpy as np
from sqlalchemy import ColumnElement, Select, and_, func, or_, select, update
from sqlalchemy.orm import Session

from app.errors import Conflict, Forbidden, InvalidInput, NotFound
from app.imaging import decode_mask
from app.models import (
    MAX_DB_INT,
    Candidate,
    CandidateStatus,
    Image,
    Label,
    LabelSource,
    Project,
    Round,
    RoundStatus,
    User,
    utcnow,
)
from app.services.labels import (
    add_label,
    current_label,
    is_current_mask,
    lock_labels_in_use,
)
from app.storage import Storage

Columns = TypeVarTuple("Columns")
ARCHIVED_IMAGES = select(Image.id).where(Image.archived_at.is_not(None))


@dataclass(frozen=True)
class QueueFilter:
    round_number: int | None = None
    min_score: float = 0.0
    max_score: float = 1.0
    empty: bool | None = None  # only empty annotations (True), only non-empty ones (False)


def awaiting_review(query: Select[*Columns]) -> Select[*Columns]:
    """``query`` of candidates narrowed to those a reviewer can decide: pending, of a round
    that has finished (ranked its candidates and superseded the older ones), of an image in
    use."""
    return query.join(Round, Round.id == Candidate.round_id).where(
        Candidate.status == CandidateStatus.PENDING,
        Round.status == RoundStatus.SUCCEEDED,
        Candidate.image_id.not_in(ARCHIVED_IMAGES),  # a round may end after the archive
    )


def emptiness_is(empty: bool) -> ColumnElement[bool]:
    """The candidates whose annotation is empty ("nothing here"), or those that are not."""
    fraction = Candidate.foreground_fraction
    return fraction == 0 if empty else fraction > 0


def encode_cursor(score: float, candidate_id: int) -> str:
    raw = json.dumps([score, candidate_id]).encode()
    return base64.urlsafe_b64encode(raw).decode()


CURSOR_REFUSED = "cursor is not one this API returned"


def decode_cursor(cursor: str) -> tuple[float, int]:
    """The (score, candidate id) of ``encode_cursor``; anything else is a 422, not a value
    that reaches the database (an id beyond the database's integers is a driver error there,
    a NaN score matches nothing)."""
    try:
        score, candidate_id = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (ValueError, TypeError, RecursionError, binascii.Error) as exc:
        raise InvalidInput(CURSOR_REFUSED) from exc
    if not _is_score(score) or not _is_id(candidate_id):
        raise InvalidInput(CURSOR_REFUSED)
    return score, candidate_id


def _is_score(value: object) -> TypeGuard[float]:
    return isinstance(value, float) and math.isfinite(value)


def _is_id(value: object) -> TypeGuard[int]:
    # bool is an int to Python, and true would read as candidate 1
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_DB_INT


def review_queue(
    *, session: Session, project: Project, filters: QueueFilter, cursor: str | None, limit: int
) -> tuple[list[tuple[Candidate, Round]], int, str | None]:
    """Pending candidates of finished rounds, highest score first, ties by id: a stable order
    for the cursor. Returns (page, pending count under the filters, next cursor or None)."""
    where = [
        Candidate.project_id == project.id,
        Candidate.score >= filters.min_score,
        Candidate.score <= filters.max_score,
    ]
    if filters.round_number is not None:
        where.append(Round.number == filters.round_number)
    if filters.empty is not None:
        where.append(emptiness_is(filters.empty))
    base = awaiting_review(select(Candidate, Round)).where(*where)
    total = session.scalar(select(func.count()).select_from(base.subquery())) or 0
    if cursor:
        score, last_id = decode_cursor(cursor)
        base = base.where(
            or_(Candidate.score < score, and_(Candidate.score == score, Candidate.id > last_id))
        )
    rows = list(
        session.execute(base.order_by(Candidate.score.desc(), Candidate.id).limit(limit + 1))
    )
    page = [(c, r) for c, r in rows[:limit]]
    following = encode_cursor(page[-1][0].score, page[-1][0].id) if len(rows) > limit else None
    return page, total, following


def list_candidates(
    *,
    session: Session,
    project: Project,
    status: CandidateStatus | None,
    round_number: int | None,
    offset: int,
    limit: int,
) -> tuple[list[tuple[Candidate, Round]], int]:
    """Candidates in any state, newest first (by id); returns (page, total under the filters)."""
    where = [Candidate.project_id == project.id]
    if status is not None:
        where.append(Candidate.status == status)
    if round_number is not None:
        where.append(Round.number == round_number)
    base = select(Candidate, Round).join(Round, Round.id == Candidate.round_id).where(*where)
    total = session.scalar(select(func.count()).select_from(base.subquery())) or 0
    rows = session.execute(base.order_by(Candidate.id.desc()).offset(offset).limit(limit))
    return [(c, r) for c, r in rows], total


def get_candidate(*, session: Session, project: Project, candidate_id: int) -> Candidate:
    candidate = session.get(Candidate, candidate_id)
    if candidate is None or candidate.project_id != project.id:
        raise NotFound(f"candidate {candidate_id} does not exist in project {project.id}")
    return candidate


def _claim_decision(
    session: Session, candidate: Candidate, status: CandidateStatus, user: User | None
) -> None:
    """pending -> status, atomically; 409 if someone decided first."""
    result = session.execute(
        update(Candidate)
        .where(Candidate.id == candidate.id, Candidate.status == CandidateStatus.PENDING)
        .values(
            status=status,
            decided_by_id=user.id if user else None,
            decided_by=user.username if user else "auto-accept",
            decided_at=utcnow(),
        )
        .execution_options(synchronize_session=False)
    )
    if getattr(result, "rowcount", 0) != 1:
        session.refresh(candidate)
        facts: dict[str, object] = {
            "candidate_id": candidate.id,
            "status": candidate.status.value,
            "decided_by": candidate.decided_by,
            "label_id": candidate.label_id,
        }
        if candidate.status is CandidateStatus.SUPERSEDED:
            raise Conflict(
                f"candidate {candidate.id} was superseded: {candidate.reason}", details=facts
            )
        raise Conflict(
            f"candidate {candidate.id} was already decided ({candidate.status.value} by "
            f"{candidate.decided_by})",
            details=facts,
        )
    session.refresh(candidate)


def check_reviewable(*, session: Session, candidate: Candidate) -> None:
    """409 for a candidate of a round that has not finished: until it has ranked its
    candidates (and superseded the older ones of the same images) they are not for review."""
    round_ = session.get(Round, candidate.round_id)
    image = session.get(Image, candidate.image_id)
    assert round_ is not None and image is not None  # foreign keys guarantee them
    if image.archived_at is not None:
        raise Conflict(
            f"candidate {candidate.id} is of image {image.id}, which is archived; a project "
            "admin restores it before it is reviewed",
            code="image_archived",
        )
    if round_.status is not RoundStatus.SUCCEEDED:
        raise Conflict(
            f"candidate {candidate.id} belongs to round {round_.number}, which is "
            f"{round_.status.value}: its candidates are reviewed once it has finished"
        )


def _candidate_mask(
    storage: Storage, candidate: Candidate, image: Image, classes: int
) -> np.ndarray:
    data = storage.get(candidate.mask_key)
    return decode_mask(
        data, width=image.width, height=image.height, num_classes=classes, max_bytes=len(data) + 1
    )


def _decide_with_label(
    session: Session,
    storage: Storage,
    project: Project,
    candidate: Candidate,
    user: User | None,
    corrected: np.ndarray | None,
) -> Label:
    """Accept (``corrected`` None) or edit: claim the decision, then append the label version
    with its provenance; an edit also records its Dice against the machine mask."""
    status = CandidateStatus.ACCEPTED if corrected is None else CandidateStatus.EDITED
    _claim_decision(session, candidate, status, user)
    image = session.get(Image, candidate.image_id)
    assert image is not None  # a foreign key guarantees it
    machine = _candidate_mask(storage, candidate, image, len(project.class_names))
    if corrected is not None:
        candidate.edit_dice = mask_dice(machine, corrected)
    label = add_label(
        session=session,
        storage=storage,
        image=image,
        mask=machine if corrected is None else corrected,
        source=LabelSource.MACHINE if corrected is None else LabelSource.EDITED,
        author=user,
        round_id=candidate.round_id,
        candidate_id=candidate.id,
    )
    candidate.label_id = label.id
    return label


def repeated_decision(
    *,
    session: Session,
    candidate: Candidate,
    user: User,
    status: CandidateStatus,
    mask: np.ndarray | None = None,
) -> Candidate | None:
    """The candidate when ``user`` sends a decision they already made and that still stands
    (for an accept or edit: its label is still the image's, and an edit's mask is the same): a
    client that lost the answer and retries gets it again (200) instead of a 409 about its
    own decision. None when the request is a decision to make."""
    if candidate.status is not status or candidate.decided_by_id != user.id:
        return None
    if candidate.label_id is None:
        return candidate if status is CandidateStatus.REJECTED else None
    image = session.get(Image, candidate.image_id)
    assert image is not None  # a foreign key guarantees it
    current = current_label(session=session, image=image)
    if current is None or current.id != candidate.label_id:
        return None
    if mask is not None and not is_current_mask(current=current, mask=mask):
        return None
    return candidate


def accept(
    *, session: Session, storage: Storage, project: Project, candidate: Candidate, user: User
) -> Label:
    check_reviewable(session=session, candidate=candidate)
    return _decide_with_label(session, storage, project, candidate, user, None)


def reject(*, session: Session, candidate: Candidate, user: User, reason: str) -> Candidate:
    check_reviewable(session=session, candidate=candidate)
    _claim_decision(session, candidate, CandidateStatus.REJECTED, user)
    candidate.reason = reason
    return candidate


def edit(
    *,
    session: Session,
    storage: Storage,
    project: Project,
    candidate: Candidate,
    user: User,
    mask: np.ndarray,
) -> Label:
    """Accept a corrected mask; records the Dice between the machine mask and the edit."""
    check_reviewable(session=session, candidate=candidate)
    return _decide_with_label(session, storage, project, candidate, user, mask)


DECIDED = (CandidateStatus.ACCEPTED, CandidateStatus.EDITED, CandidateStatus.REJECTED)


def undo(*, session: Session, candidate: Candidate, user: User, may_undo_others: bool) -> None:
    """Take a decision back: the candidate is pending again and, for an accept or an edit,
    the label version it made is retracted (kept, with who and when, but no longer the
    image's label). Only while that version is still the image's current label: a newer one
    was built on it, and is the one to change. The decider, or a project admin
    (``may_undo_others``), may; 409 for a candidate that is not decided."""
    previous = candidate.status
    if previous is CandidateStatus.SUPERSEDED:
        raise Conflict(
            f"candidate {candidate.id} was superseded ({candidate.reason}): no decision to undo"
        )
    if previous not in DECIDED:
        raise Conflict(f"candidate {candidate.id} is {previous.value}: no decision to undo")
    if candidate.decided_by_id != user.id and not may_undo_others:
        raise Forbidden(
            f"candidate {candidate.id} was {previous.value} by {candidate.decided_by}: only they "
            "or a project admin can undo it"
        )
    label = session.get(Label, candidate.label_id) if candidate.label_id else None
    image = session.get(Image, candidate.image_id)
    assert image is not None  # a foreign key guarantees it
    lock_labels_in_use(session=session, image=image, before="a decision on it is undone")
    current = current_label(session=session, image=image)
    if label is not None and (current is None or current.id != label.id):
        newer = "none" if current is None else f"version {current.version}"
        raise Conflict(
            f"image {image.id}'s label is now {newer}, not the version {label.version} this "
            "decision made: change that label instead"
        )
    if label is None and current is not None:  # a rejection, since which the image got a label
        raise Conflict(
            f"image {image.id} has label version {current.version} since: its candidates "
            "are no longer for review"
        )
    # A superseded newer candidate (one a round made while this decision was taken) is
    # never reviewed, so it does not stand in the way; any other would then have a rival.
    newer_candidate = session.scalar(
        select(Candidate.id).where(
            Candidate.image_id == candidate.image_id,
            Candidate.id > candidate.id,
            Candidate.status != CandidateStatus.SUPERSEDED,
        )
    )
    if newer_candidate is not None:
        raise Conflict(
            f"image {image.id} has a newer candidate ({newer_candidate}): only the newest "
            "candidate's decision can be undone"
        )
    result = session.execute(
        update(Candidate)
        .where(Candidate.id == candidate.id, Candidate.status == previous)
        .values(
            status=CandidateStatus.PENDING,
            decided_by_id=None,
            decided_by=None,
            decided_at=None,
            reason=None,
            edit_dice=None,
            label_id=None,
        )
        .execution_options(synchronize_session=False)
    )
    if getattr(result, "rowcount", 0) != 1:
        raise Conflict(f"candidate {candidate.id} changed meanwhile; reload and try again")
    if label is not None:
        label.retracted_at = utcnow()
        label.retracted_by = user.username
    session.refresh(candidate)


def mask_dice(a: np.ndarray, b: np.ndarray) -> float:
    """Dice of the foreground (any class) of two masks; 1.0 when both are empty."""
    fa, fb = a > 0, b > 0
    total = int(fa.sum()) + int(fb.sum())
    return 1.0 if total == 0 else 2.0 * float(np.logical_and(fa, fb).sum()) / total


def accept_above(
    *,
    session: Session,
    storage: Storage,
    project: Project,
    threshold: float,
    user: User | None,
    include_empty: bool = False,
    ranking_round_id: int | None = None,
) -> int:
    """Accept every pending candidate of a finished round scoring >= threshold, in one
    transaction. Running it again finds nothing pending above the threshold: a no-op
    returning 0. ``ranking_round_id``: a round that is ranking its candidates now (its
    auto-accept), whose candidates count as finished.

    Empty annotations stay pending unless ``include_empty``: their score is the model's
    confidence that nothing is there, as high on a missed lesion as on a normal image
    (``samdsk.selection``)."""
    conditions = [
        Candidate.project_id == project.id,
        Candidate.status == CandidateStatus.PENDING,
        Candidate.score >= threshold,
        or_(Round.status == RoundStatus.SUCCEEDED, Round.id == ranking_round_id),
        Candidate.image_id.not_in(ARCHIVED_IMAGES),  # they take no decisions
    ]
    if not include_empty:
        conditions.append(emptiness_is(False))
    pending = list(
        session.scalars(
            select(Candidate)
            .join(Round, Round.id == Candidate.round_id)
            .where(*conditions)
            .order_by(Candidate.score.desc(), Candidate.id)
        )
    )
    accepted = 0
    for candidate in pending:
        # an earlier acceptance in this loop may have superseded it (same image, two rounds)
        session.refresh(candidate)
        if candidate.status is CandidateStatus.PENDING:
            _decide_with_label(session, storage, project, candidate, user, None)
            accepted += 1
    return accepted


def round_statistics(*, session: Session, round_: Round) -> dict[str, Any]:
    """Counts by decision, candidates and acceptance rate per score band (tenths of the
    match score) and mean edit Dice of a round."""
    rows = session.execute(
        select(Candidate.status, Candidate.score, Candidate.edit_dice).where(
            Candidate.round_id == round_.id
        )
    ).all()
    counts = {status.value: 0 for status in CandidateStatus}
    bands: dict[str, dict[str, float]] = {}
    edits = []
    for status, score, edit_dice in rows:
        counts[status.value] += 1
        low = min(int(score * 10), 9) / 10
        key = f"{low:.1f}-{low + 0.1:.1f}"
        band = bands.setdefault(key, {"candidates": 0, "decided": 0, "accepted": 0})
        band["candidates"] += 1  # all of them, decided or not: the match-score histogram
        if status in (CandidateStatus.ACCEPTED, CandidateStatus.EDITED, CandidateStatus.REJECTED):
            band["decided"] += 1
            band["accepted"] += status is CandidateStatus.ACCEPTED
        if edit_dice is not None:
            edits.append(edit_dice)
    for band in bands.values():
        band["acceptance_rate"] = band["accepted"] / band["decided"] if band["decided"] else None  # type: ignore[assignment]
    return {
        "candidates": len(rows),
        **counts,
        "score_bands": dict(sorted(bands.items())),
        "mean_edit_dice": float(np.mean(edits)) if edits else None,
    }
