"""First task on upload: a thumbnail and pixel statistics, stored under keys derived from the
image id, so running it again rewrites the same values."""

from __future__ import annotations

from app.db import session_scope
from app.imaging import compute_statistics, decode_image, make_thumbnail
from app.models import Image, Job
from app.runtime import Runtime
from workers.runner import JobContext

THUMBNAIL_SIDE = 256


def thumbnail_key(image_id: int) -> str:
    return f"thumbnails/{image_id}.png"


def compute_image_statistics(runtime: Runtime, job: Job, context: JobContext) -> str:
    with session_scope(runtime.session_factory) as session:
        image = session.get(Image, job.image_id)
        if image is None:
            return "image no longer exists; nothing to do"
        storage_key = image.storage_key
    context.progress(0.1, "decoding")
    decoded = decode_image(
        runtime.storage.get(storage_key),
        max_bytes=runtime.settings.max_upload_bytes,
        max_pixels=runtime.settings.max_image_pixels,
    )
    context.progress(0.5, "thumbnail and statistics")
    key = thumbnail_key(image.id)
    runtime.storage.put_at(key, make_thumbnail(decoded, max_side=THUMBNAIL_SIDE))
    statistics = compute_statistics(decoded)
    context.progress(0.9, "saving")
    with session_scope(runtime.session_factory) as session:
        row = session.get(Image, image.id)
        if row is not None:
            row.thumbnail_key = key
            row.statistics = statistics
    return f"thumbnail {key}"
