"""Label versions: append-only. The current label of an image is its newest version that is
not retracted (an undone review decision)."""

from __future__ import annotations

import numpy as np
from sqlalchemy import ColumnElement, Subquery, and_, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.errors import Conflict, NotFound
from app.imaging import decode_mask, mask_to_png
from app.models import (
    IMAGE_IN_USE,
    Candidate,
    CandidateStatus,
    Image,
    Label,
    LabelSource,
    Project,
    User,
    utcnow,
)
from app.storage import Storage, content_key


def check_mask(*, data: bytes, image: Image, project: Project, max_bytes: int) -> np.ndarray:
    """Decode a mask upload into H x W uint8 class indices; raises on any mismatch."""
    return decode_mask(
        data,
        width=image.width,
        height=image.height,
        num_classes=len(project.class_names),
        max_bytes=max_bytes,
    )


LIVE = Label.retracted_at.is_(None)


def newest_live_versions(*conditions: ColumnElement[bool]) -> Subquery:
    """(image_id, version) of each image's current label, among the labels ``conditions``
    select (joined with their image, so that a project's images can be chosen)."""
    return (
        select(Label.image_id, func.max(Label.version).label("version"))
        .join(Image, Image.id == Label.image_id)
        .where(LIVE, *conditions)
        .group_by(Label.image_id)
        .subquery()
    )


def is_current(newest: Subquery) -> ColumnElement[bool]:
    """Join condition of ``Label`` with ``newest_live_versions``: the current label rows."""
    return and_(Label.image_id == newest.c.image_id, Label.version == newest.c.version)


def current_label(*, session: Session, image: Image) -> Label | None:
    return session.scalar(
        select(Label)
        .where(Label.image_id == image.id, LIVE)
        .order_by(Label.version.desc())
        .limit(1)
    )


def is_current_mask(*, current: Label | None, mask: np.ndarray) -> bool:
    """Whether ``mask`` is exactly the current label's mask (masks are stored by content)."""
    return current is not None and current.mask_key == content_key(mask_to_png(mask), ".png")


def lock_labels(*, session: Session, image: Image) -> None:
    """Hold the image's labels until this transaction ends, so that what it reads of them
    (the current version, whether a mask repeats it) is still true when it writes.

    A no-op update of the image row does this on both databases: PostgreSQL locks the row
    until commit, and SQLite's writer lock is taken before the reads that follow, which
    therefore see every committed version. Without it, two identical uploads sent at once
    would both find no repeat and make two versions."""
    session.execute(
        update(Image)
        .where(Image.id == image.id)
        .values(id=Image.id)
        .execution_options(synchronize_session=False)
    )


def repeated_label(
    *,
    session: Session,
    image: Image,
    mask: np.ndarray,
    author: User,
    expected_version: int | None,
) -> Label | None:
    """The current label when a human upload of ``mask`` would add nothing: the mask
    already is the current human label, and the upload was made on that version or is this
    author's retry of the upload that made it (a client that lost the 201 and sends the same
    request again). None when the upload is a new version.

    A machine or edited label is never repeated: a human upload of the same mask confirms
    it, a version of its own (which also outlives an undo of the review decision)."""
    current = current_label(session=session, image=image)
    if current is None or current.source is not LabelSource.HUMAN:
        return None
    if not is_current_mask(current=current, mask=mask):
        return None
    if expected_version is None or expected_version == current.version:
        return current
    parent = session.get(Label, current.parent_id) if current.parent_id else None
    made_on = parent.version if parent else 0  # the version its author saw
    retry = current.author_id == author.id and expected_version == made_on
    return current if retry else None


def lock_labels_in_use(*, session: Session, image: Image, before: str) -> None:
    """``lock_labels``, then 409 ``image_archived`` if the image is archived: read under the
    lock, so an archive taken meanwhile counts. ``before`` says what waits for a restore."""
    lock_labels(session=session, image=image)
    session.refresh(image, ["archived_at"])
    if image.archived_at is not None:
        raise Conflict(
            f"image {image.id} ({image.original_filename}) is archived; a project admin "
            f"restores it before {before}",
            code="image_archived",
        )


def add_label(
    *,
    session: Session,
    storage: Storage,
    image: Image,
    mask: np.ndarray,
    source: LabelSource,
    author: User | None,
    round_id: int | None = None,
    candidate_id: int | None = None,
    expected_version: int | None = None,
) -> Label:
    """Append a new version. ``expected_version`` (the version the author saw, 0 for none)
    turns a concurrent change into a 409 instead of a silent overwrite. The image's other
    pending candidates are superseded: they were made without this label, and accepting one
    later would put a machine mask over it."""
    lock_labels_in_use(session=session, image=image, before="it takes labels")
    parent = current_label(session=session, image=image)
    seen = parent.version if parent else 0
    if expected_version is not None and expected_version != seen:
        raise Conflict(
            f"image {image.id} is at label version {seen}, not {expected_version}; "
            "reload and try again"
        )
    key = storage.put_content(mask_to_png(mask), suffix=".png")
    # numbered after every version, retracted ones too: a number is never used twice
    newest = session.scalar(select(func.max(Label.version)).where(Label.image_id == image.id))
    label = Label(
        image_id=image.id,
        version=(newest or 0) + 1,
        mask_key=key,
        source=source,
        author=author.username if author else "auto-accept",
        author_id=author.id if author else None,
        round_id=round_id,
        candidate_id=candidate_id,
        parent_id=parent.id if parent else None,
        foreground_fraction=float(np.count_nonzero(mask)) / float(mask.size),
    )
    try:
        with session.begin_nested():
            session.add(label)
    except IntegrityError as exc:
        raise Conflict(f"image {image.id} got a new label version meanwhile; retry") from exc
    others = [Candidate.image_id == image.id]
    if candidate_id is not None:
        others.append(Candidate.id != candidate_id)
    supersede_pending(
        session,
        *others,
        reason=f"image {image.id} got label version {label.version} ({source.value}, "
        f"by {label.author})",
    )
    return label


def supersede_pending(session: Session, *which: ColumnElement[bool], reason: str) -> None:
    """Mark the pending candidates ``which`` selects superseded, saying why."""
    session.execute(
        update(Candidate)
        .where(Candidate.status == CandidateStatus.PENDING, *which)
        .values(status=CandidateStatus.SUPERSEDED, decided_at=utcnow(), reason=reason)
        .execution_options(synchronize_session=False)
    )


def list_labels(*, session: Session, image: Image) -> list[Label]:
    return list(
        session.scalars(select(Label).where(Label.image_id == image.id).order_by(Label.version))
    )


def get_label_version(*, session: Session, image: Image, version: int) -> Label:
    label = session.scalar(
        select(Label).where(Label.image_id == image.id, Label.version == version)
    )
    if label is None:
        raise NotFound(f"image {image.id} has no label version {version}")
    return label


def count_labeled(*, session: Session, project: Project) -> int:
    return (
        session.scalar(
            select(func.count(func.distinct(Label.image_id)))
            .join(Image, Image.id == Label.image_id)
            .where(Image.project_id == project.id, IMAGE_IN_USE, LIVE)
        )
        or 0
    )
