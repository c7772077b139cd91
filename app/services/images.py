"""Images: validated on the way in, stored content-addressed, deduplicated per project."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.errors import Conflict, NotFound
from app.imaging import DecodedImage, decode_image
from app.models import IMAGE_IN_USE, Candidate, Image, Label, LabelSource, Project, User, utcnow
from app.services.labels import is_current, lock_labels, newest_live_versions
from app.services.review import awaiting_review
from app.storage import Storage

FORMAT_SUFFIXES = {"png": ".png", "jpeg": ".jpg", "tiff": ".tif", "bmp": ".bmp", "dicom": ".dcm"}
MEDIA_TYPES = {
    "png": "image/png",
    "jpeg": "image/jpeg",
    "tiff": "image/tiff",
    "bmp": "image/bmp",
    "dicom": "application/dicom",
}


@dataclass(frozen=True)
class UploadLimits:
    max_bytes: int
    max_pixels: int


@dataclass(frozen=True)
class CheckedUpload:
    """An upload that decoded cleanly; nothing has been stored yet."""

    data: bytes
    filename: str
    content_hash: str
    decoded: DecodedImage


def check_upload(*, data: bytes, filename: str, limits: UploadLimits) -> CheckedUpload:
    """Decode and validate; raises an AppError subclass and stores nothing on bad input."""
    decoded = decode_image(
        data, filename=filename, max_bytes=limits.max_bytes, max_pixels=limits.max_pixels
    )
    digest = hashlib.sha256(data).hexdigest()
    return CheckedUpload(data=data, filename=filename, content_hash=digest, decoded=decoded)


def find_by_hash(*, session: Session, project: Project, content_hash: str) -> Image | None:
    return session.scalar(
        select(Image).where(Image.project_id == project.id, Image.content_hash == content_hash)
    )


def store_image(
    *, session: Session, storage: Storage, project: Project, upload: CheckedUpload
) -> tuple[Image, bool]:
    """Store a checked upload; returns (image, created). A duplicate returns the existing row."""
    existing = find_by_hash(session=session, project=project, content_hash=upload.content_hash)
    if existing is not None:
        return existing, False
    decoded = upload.decoded
    key = storage.put_content(upload.data, suffix=FORMAT_SUFFIXES[decoded.format])
    image = Image(
        project_id=project.id,
        content_hash=upload.content_hash,
        storage_key=key,
        original_filename=upload.filename[:300],
        format=decoded.format,
        width=decoded.width,
        height=decoded.height,
        channels=decoded.channels,
        bit_depth=decoded.bit_depth,
        size_bytes=len(upload.data),
    )
    try:
        with session.begin_nested():
            session.add(image)
    except IntegrityError:
        # Another request stored the same content first: theirs is the image.
        again = find_by_hash(session=session, project=project, content_hash=upload.content_hash)
        if again is None:
            raise
        return again, False
    return image, True


def get_image(*, session: Session, project: Project, image_id: int) -> Image:
    image = session.get(Image, image_id)
    if image is None or image.project_id != project.id:
        raise NotFound(f"image {image_id} does not exist in project {project.id}")
    return image


@dataclass(frozen=True)
class ImageFilter:
    """Which images a listing shows, and in what order. ``label``: "none" (unlabeled), "any",
    or a source (human, machine, edited) of the current label."""

    label: str | None = None
    pending_review: bool | None = None
    filename: str | None = None
    content_hash: str | None = None
    sort: str = "id"
    archived: bool = False  # the archived images instead of those in use


SORTS = {
    "id": (Image.id,),
    "-id": (Image.id.desc(),),
    "filename": (Image.original_filename, Image.id),
    "-filename": (Image.original_filename.desc(), Image.id.desc()),
}


def list_images(
    *, session: Session, project: Project, offset: int, limit: int, only: ImageFilter
) -> tuple[list[Image], int]:
    query = select(Image).where(
        Image.project_id == project.id,
        Image.archived_at.is_not(None) if only.archived else IMAGE_IN_USE,
    )
    if only.label is not None:
        newest = newest_live_versions(Image.project_id == project.id)
        current = (
            select(Label.image_id, Label.source)
            .join(newest, is_current(newest))
            .subquery("current")
        )
        query = query.outerjoin(current, current.c.image_id == Image.id)
        if only.label == "none":
            query = query.where(current.c.image_id.is_(None))
        elif only.label == "any":
            query = query.where(current.c.image_id.is_not(None))
        else:
            query = query.where(current.c.source == LabelSource(only.label))
    if only.pending_review is not None:
        pending = awaiting_review(select(Candidate.image_id)).where(
            Candidate.project_id == project.id
        )
        query = query.where(
            Image.id.in_(pending) if only.pending_review else Image.id.not_in(pending)
        )
    if only.filename:
        lowered = func.lower(Image.original_filename)
        query = query.where(lowered.contains(only.filename.lower(), autoescape=True))
    if only.content_hash:
        query = query.where(Image.content_hash == only.content_hash.lower())
    count = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(query.order_by(*SORTS[only.sort]).offset(offset).limit(limit))
    return list(rows), count


@dataclass(frozen=True)
class LabelState:
    """Where an image stands: the source of its current label, and a pending review."""

    source: LabelSource | None
    pending_review: bool
    version: int | None = None


def label_states(*, session: Session, image_ids: list[int]) -> dict[int, LabelState]:
    """The label state of each image, in two queries whatever the number of images."""
    newest = newest_live_versions(Label.image_id.in_(image_ids))
    current = {
        image_id: (source, version)
        for image_id, source, version in session.execute(
            select(Label.image_id, Label.source, Label.version).join(newest, is_current(newest))
        ).all()
    }
    pending = set(
        session.scalars(
            awaiting_review(select(Candidate.image_id)).where(Candidate.image_id.in_(image_ids))
        )
    )
    return {
        i: LabelState(current[i][0], i in pending, current[i][1])
        if i in current
        else LabelState(None, i in pending)
        for i in image_ids
    }


def archive_image(*, session: Session, image: Image, user: User, reason: str) -> Image:
    """Take the image out of use: listings, rounds, the review queue and exports leave it
    out, and it takes no labels; every label version and candidate is kept. 409 if it is
    archived already."""
    lock_labels(session=session, image=image)  # no label lands half-way through
    session.refresh(image)
    if image.archived_at is not None:
        raise Conflict(
            f"image {image.id} was archived already ({image.archived_at:%Y-%m-%d %H:%M} "
            f"by {image.archived_by})",
            code="image_archived",
        )
    image.archived_at = utcnow()
    image.archived_by = user.username
    image.archive_reason = reason
    return image


def restore_image(*, session: Session, image: Image) -> Image:
    """Put an archived image back in use, with its labels as they were; 409 if it is not
    archived."""
    lock_labels(session=session, image=image)
    session.refresh(image)
    if image.archived_at is None:
        raise Conflict(f"image {image.id} is not archived", code="not_archived")
    image.archived_at = None
    image.archived_by = None
    image.archive_reason = None
    return image
