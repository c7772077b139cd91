"""Import of a labelled data set from a zip: ``images/<stem>.<ext>`` and ``masks/<stem>.png``,
the layout of the Kvasir-SEG, BUSI and PH2 folders (inside one enclosing folder too, as
``zip -r set.zip set/`` makes), or one COCO JSON file with the images it lists
(:mod:`app.services.coco_import`). A mask belongs to the image with the same stem; images
without a mask arrive unlabeled.

Every entry is unpacked and decoded before anything is stored, so any problem is a 4xx that
names the entry and changes nothing. Storing then reads the entries again, one at a time,
instead of holding a whole data set's pixels in memory.
"""

from __future__ import annotations

import hashlib
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import PurePosixPath

import numpy as np
from sqlalchemy.orm import Session

from app.errors import InvalidInput, PayloadTooLarge, UnsupportedMediaType
from app.imaging import decode_mask
from app.models import LabelSource, Project, User
from app.services.archive import is_litter, read_entry
from app.services.coco_import import Drawing, draw_mask, is_coco_file, read_coco
from app.services.images import CheckedUpload, UploadLimits, check_upload, store_image
from app.services.jobs import create_job
from app.services.labels import add_label, current_label, is_current_mask
from app.storage import Storage

FOLDERS = ("images", "masks")
EXPORT_MANIFEST = "manifest.csv"


@dataclass(frozen=True)
class ImportPair:
    """An image entry and where its label comes from: the entry of its mask, or the COCO
    regions to draw; neither for an image that arrives unlabeled."""

    image: str
    mask: str | None
    drawing: Drawing | None = None


def plan_import(*, archive: zipfile.ZipFile, project: Project, max_bytes: int) -> list[ImportPair]:
    """The images of the zip and their labels' sources, by the zip's layout: a COCO file
    with its images when it holds one JSON file and no masks folder, else images/ and
    masks/."""
    names = [info.filename for info in archive.infolist()]
    files = [name for name in names if not is_litter(name)]
    coco = [name for name in files if is_coco_file(name)]
    if not coco or any("/masks/" in f"/{name}" for name in files):
        return pair_entries(names)
    if len(coco) > 1:
        raise InvalidInput(f"the zip holds several COCO files ({', '.join(coco)}); import one")
    drawings = read_coco(
        read_entry(archive, coco[0], max_bytes),
        entry=coco[0],
        files=[name for name in files if name != coco[0]],
        class_names=list(project.class_names),
    )
    if not drawings:
        raise InvalidInput(f"{coco[0]} lists no images")
    return [ImportPair(entry, None, drawings[entry]) for entry in sorted(drawings)]


@dataclass
class ImportCounts:
    images_created: int = 0
    images_existing: int = 0
    labels_created: int = 0
    labels_unchanged: int = 0
    without_mask: int = 0
    job_ids: list[int] = field(default_factory=list)


def pair_entries(names: list[str]) -> list[ImportPair]:
    """Pair ``images/`` and ``masks/`` entries by stem; 422 for anything else in the zip, a
    stem used twice in one folder, or a mask without its image."""
    files = [name for name in names if not is_litter(name)]
    prefix = _enclosing_folder(files)
    # an export's own manifest: an exported zip with its images imports as it is
    files = [name for name in files if name != f"{prefix}{EXPORT_MANIFEST}"]
    found: dict[str, dict[str, str]] = {folder: {} for folder in FOLDERS}
    for name in files:
        parts = name.removeprefix(prefix).split("/")
        if len(parts) != 2 or parts[0] not in FOLDERS or not parts[1]:
            raise InvalidInput(f"{name}: expected images/<name>.<ext> or masks/<name>.png")
        stem = PurePosixPath(parts[1]).stem
        same = found[parts[0]].setdefault(stem, name)
        if same != name:
            raise InvalidInput(f"{name} and {same} share the name {stem!r}; rename one")
    images, masks = found["images"], found["masks"]
    orphans = sorted(set(masks) - set(images))
    if orphans:
        more = f" ({len(orphans) - 1} more masks lack theirs)" if len(orphans) > 1 else ""
        raise InvalidInput(f"{masks[orphans[0]]}: no image named {orphans[0]} in images/{more}")
    if not images:
        raise InvalidInput("the zip holds no images/ entries")
    return [ImportPair(images[stem], masks.get(stem)) for stem in sorted(images)]


def _enclosing_folder(files: list[str]) -> str:
    """``set/`` when every file lies under one folder other than images/ and masks/."""
    first = files[0].split("/", 1)[0] if files else ""
    if not first or first in FOLDERS or not all(f.startswith(f"{first}/") for f in files):
        return ""
    return f"{first}/"


@contextmanager
def _naming(entry: str) -> Iterator[None]:
    """Put the entry's name in front of a validation error's message."""
    try:
        yield
    except (InvalidInput, PayloadTooLarge, UnsupportedMediaType) as exc:
        # a file's own check may have named it already: say the entry's name once
        message = exc.message.removeprefix(f"{PurePosixPath(entry).name}: ")
        raise type(exc)(f"{entry}: {message}") from exc


def _image(archive: zipfile.ZipFile, entry: str, limits: UploadLimits) -> CheckedUpload:
    with _naming(entry):
        data = read_entry(archive, entry, limits.max_bytes)
        return check_upload(data=data, filename=PurePosixPath(entry).name, limits=limits)


def _mask(
    archive: zipfile.ZipFile,
    pair: ImportPair,
    upload: CheckedUpload,
    project: Project,
    max_bytes: int,
) -> np.ndarray | None:
    """The pair's label as a class mask, or None for an image that arrives unlabeled."""
    decoded = upload.decoded
    if pair.drawing is not None:  # None again for an image listed without annotations
        return draw_mask(pair.drawing, width=decoded.width, height=decoded.height, entry=pair.image)
    if pair.mask is None:
        return None
    with _naming(pair.mask):
        data = read_entry(archive, pair.mask, max_bytes)
        return decode_mask(
            data,
            width=decoded.width,
            height=decoded.height,
            num_classes=len(project.class_names),
            max_bytes=max_bytes,
        )


def check_pairs(
    *, archive: zipfile.ZipFile, pairs: list[ImportPair], project: Project, limits: UploadLimits
) -> None:
    """Decode every image and mask; raises on the first bad one, having stored nothing.

    One image under two names is refused when its masks differ: stored in turn, the later
    mask would silently replace the earlier as the image's label."""
    # image content hash -> (entry, its mask's digest): digests, not a data set's pixels
    masked: dict[str, tuple[str, str]] = {}
    for pair in pairs:
        upload = _image(archive, pair.image, limits)
        mask = _mask(archive, pair, upload, project, limits.max_bytes)
        if mask is None:
            continue
        digest = hashlib.sha256(mask.tobytes()).hexdigest()  # same image: same shape
        seen = masked.setdefault(upload.content_hash, (pair.image, digest))
        if seen[1] != digest:
            raise InvalidInput(
                f"{seen[0]} and {pair.image} are the same image with different masks; "
                "keep one of them"
            )


def store_pairs(
    *,
    session: Session,
    storage: Storage,
    project: Project,
    user: User,
    archive: zipfile.ZipFile,
    pairs: list[ImportPair],
    limits: UploadLimits,
) -> ImportCounts:
    """Store checked pairs: new images (with their statistics jobs), and a human label
    version for each mask unless it equals the image's current label."""
    counts = ImportCounts()
    for pair in pairs:
        upload = _image(archive, pair.image, limits)
        image, created = store_image(
            session=session, storage=storage, project=project, upload=upload
        )
        if created:
            counts.images_created += 1
            session.flush()
            job = create_job(
                session=session, kind="image_statistics", project_id=project.id, image_id=image.id
            )
            counts.job_ids.append(job.id)
        else:
            counts.images_existing += 1
        mask = _mask(archive, pair, upload, project, limits.max_bytes)
        if mask is None:
            counts.without_mask += 1
            continue
        current = current_label(session=session, image=image)
        # importing the same set again adds no versions; over a review decision's label, the
        # same mask is a human confirmation that outlives an undo of the decision
        human = current is not None and current.source is LabelSource.HUMAN
        if human and is_current_mask(current=current, mask=mask):
            counts.labels_unchanged += 1
            continue
        add_label(
            session=session,
            storage=storage,
            image=image,
            mask=mask,
            source=LabelSource.HUMAN,
            author=user,
        )
        counts.labels_created += 1
    return counts
