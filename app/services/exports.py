"""Export of a project's current labels (the newest version of every labelled image): COCO
JSON, or a zip of PNG masks with a provenance manifest.

Both are written to a file one label at a time, so a large project costs disk, not memory;
the route streams the file and deletes it afterwards.
"""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import PurePosixPath
from typing import IO, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.errors import Conflict, InvalidInput
from app.imaging import decode_mask
from app.imaging.deidentify import deidentify_image
from app.models import IMAGE_IN_USE, Candidate, Image, Label, LabelSource, Project, Round, utcnow
from app.services.coco import categories, region_annotations
from app.services.labels import is_current, newest_live_versions
from app.storage import Storage

MANIFEST_COLUMNS = (
    "image_id", "filename", "mask_file", "label_version", "source", "round", "candidate_id",
    "author", "created_at", "edit_dice",
)  # fmt: skip


class ExportFormat(StrEnum):
    COCO = "coco"
    MASKS = "masks"


@dataclass(frozen=True)
class ExportRow:
    image: Image
    label: Label
    round_number: int | None
    edit_dice: float | None


Rows = Callable[[], Iterable[ExportRow]]


@dataclass(frozen=True)
class Deidentification:
    """How an export leaves out what may identify a patient: every image is named
    ``image-<id>`` instead of its file name, and images are written without identifying
    metadata (:mod:`app.imaging.deidentify`). ``uid_key`` keys the new DICOM UIDs."""

    uid_key: bytes
    max_pixels: int

    def file(self, image: Image, data: bytes) -> bytes:
        try:
            return deidentify_image(
                data, image.format, uid_key=self.uid_key, max_pixels=self.max_pixels
            )
        except InvalidInput as exc:
            raise Conflict(
                f"image {image.id} ({image.original_filename}) cannot be de-identified: "
                f"{exc.message}",
                code="not_deidentifiable",
                details={"image_id": image.id},
            ) from exc


def export_name(image: Image, deidentified: Deidentification | None) -> str:
    """The image's name in an export: its file name, or ``image-<id>.<ext>``."""
    if deidentified is None:
        return image.original_filename
    return f"image-{image.id}{FORMAT_SUFFIXES.get(image.format, '')}"


def current_label_rows(
    *, session: Session, project: Project, source: LabelSource | None
) -> Generator[ExportRow]:
    """The newest label of each labelled image, by image id; ``source`` filters on that
    newest version's source."""
    newest = newest_live_versions(Image.project_id == project.id, IMAGE_IN_USE)
    query = (
        select(Image, Label, Round.number, Candidate.edit_dice)
        .join(Label, Label.image_id == Image.id)
        .join(newest, is_current(newest))
        .outerjoin(Round, Round.id == Label.round_id)
        .outerjoin(Candidate, Candidate.id == Label.candidate_id)
        .order_by(Image.id)
    )
    if source is not None:
        query = query.where(Label.source == source)
    # Closed however the export ends: a server-side cursor (PostgreSQL) left open by an
    # export that failed half-way would hold its transaction until garbage collection.
    with session.execute(query.execution_options(yield_per=200)) as result:
        for image, label, number, dice in result:
            yield ExportRow(image, label, number, dice)


def mask_stem(image: Image, taken: set[str], name: str) -> str:
    """The stem of the image's ``name`` in the export, made safe for a zip entry and unique."""
    stem = PurePosixPath(name.replace("\\", "/")).stem
    stem = re.sub(r"[^\w.() -]", "_", stem).strip(" .") or f"image-{image.id}"
    if stem in taken:
        stem = f"{stem}_{image.id}"
    taken.add(stem)
    return stem


# The extension an image without one in its original name gets in an export.
FORMAT_SUFFIXES = {"png": ".png", "jpeg": ".jpg", "tiff": ".tif", "bmp": ".bmp", "dicom": ".dcm"}


def image_entry(image: Image, stem: str, name: str) -> str:
    """``images/<stem>.<ext>``: the extension of the image's ``name``, else the format's."""
    suffix = PurePosixPath(name.replace("\\", "/")).suffix.lower()
    return f"images/{stem}{suffix or FORMAT_SUFFIXES.get(image.format, '')}"


def write_masks_zip(
    *,
    rows: Iterable[ExportRow],
    storage: Storage,
    out: IO[bytes],
    include_images: bool = False,
    deidentified: Deidentification | None = None,
) -> int:
    """``masks/<stem>.png`` (the stored PNG of class indices) for each row, and
    ``manifest.csv``; with ``include_images`` also ``images/<stem>.<ext>`` (the uploaded
    file as it was, or de-identified), the layout an import reads. Returns the number of
    masks."""
    taken: set[str] = set()
    count = 0
    with (
        zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive,
        tempfile.TemporaryFile() as manifest,
    ):
        text = io.TextIOWrapper(manifest, encoding="utf-8", newline="")
        writer = csv.writer(text)
        writer.writerow(MANIFEST_COLUMNS)
        for row in rows:
            image_name = export_name(row.image, deidentified)
            stem = mask_stem(row.image, taken, image_name)
            name = f"masks/{stem}.png"
            # PNGs are compressed already: stored as they are.
            archive.writestr(name, storage.get(row.label.mask_key), zipfile.ZIP_STORED)
            if include_images:  # JPEG and PNG are compressed too; DICOM and TIFF seldom
                image = storage.get(row.image.storage_key)
                if deidentified is not None:
                    image = deidentified.file(row.image, image)
                archive.writestr(image_entry(row.image, stem, image_name), image)
            writer.writerow(_manifest_row(row, name, image_name))
            count += 1
        text.flush()
        manifest.seek(0)
        with archive.open("manifest.csv", "w") as entry:
            shutil.copyfileobj(manifest, entry)
        text.detach()
    return count


# A spreadsheet opening the manifest runs a cell that starts with one of these as a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(text: str) -> str:
    """``text`` with a leading apostrophe where it would start a formula (OWASP's advice on
    CSV injection); a spreadsheet shows it as text, and other readers can strip it."""
    return f"'{text}" if text.startswith(FORMULA_STARTS) else text


def _manifest_row(row: ExportRow, mask_file: str, image_name: str) -> list[object]:
    label = row.label
    return [
        row.image.id,
        spreadsheet_safe(image_name),
        mask_file,
        label.version,
        label.source.value,
        "" if row.round_number is None else row.round_number,
        "" if label.candidate_id is None else label.candidate_id,
        spreadsheet_safe(label.author),
        label.created_at.isoformat(),
        "" if row.edit_dice is None else f"{row.edit_dice:.6f}",
    ]


def write_coco(
    *,
    rows: Rows,
    project: Project,
    storage: Storage,
    out: IO[str],
    deidentified: Deidentification | None = None,
) -> int:
    """COCO JSON: images, categories from the project's classes, one annotation per region.
    ``rows`` is called twice (images, then annotations), so no list of them is kept."""
    head = {
        "info": {
            "description": f"SamDSK project {project.name}: current labels",
            "date_created": utcnow().isoformat(),
        },
        "licenses": [],
        "categories": categories(list(project.class_names)),
    }
    out.write(json.dumps(head)[:-1] + ', "images": ')
    count = _write_array(out, (_coco_image(row, deidentified) for row in rows()))
    out.write(', "annotations": ')
    _write_array(out, _coco_annotations(rows(), storage, len(project.class_names)))
    out.write("}")
    return count


def _coco_image(row: ExportRow, deidentified: Deidentification | None) -> dict[str, Any]:
    return {
        "id": row.image.id,
        "file_name": export_name(row.image, deidentified),
        "width": row.image.width,
        "height": row.image.height,
        "label_version": row.label.version,
        "label_source": row.label.source.value,
    }


def _coco_annotations(
    rows: Iterable[ExportRow], storage: Storage, num_classes: int
) -> Iterator[dict[str, Any]]:
    next_id = 1
    for row in rows:
        data = storage.get(row.label.mask_key)
        mask = decode_mask(
            data,
            width=row.image.width,
            height=row.image.height,
            num_classes=num_classes,
            max_bytes=len(data) + 1,
        )
        for annotation in region_annotations(mask, num_classes):
            yield {"id": next_id, "image_id": row.image.id, **annotation}
            next_id += 1


def _write_array(out: IO[str], items: Iterable[dict[str, Any]]) -> int:
    out.write("[")
    count = 0
    for count, item in enumerate(items, start=1):
        out.write(("," if count > 1 else "") + json.dumps(item))
    out.write("]")
    return count
