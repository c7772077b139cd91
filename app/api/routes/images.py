"""Images: upload (single and batch), list, get, download the original and its thumbnail."""

from __future__ import annotations

from typing import Annotated, Literal
from urllib.parse import quote

from fastapi import APIRouter, File, Query, Request, Response, UploadFile, status
from fastapi.responses import JSONResponse

from app.api.conditional import render_tag, unchanged, validators
from app.api.deps import (
    PaginationDep,
    ProjectAnnotator,
    ProjectViewer,
    RuntimeDep,
    SessionDep,
    SettingsDep,
    StorageDep,
)
from app.api.params import IdPath
from app.api.uploads import read_capped
from app.errors import InvalidInput, NotFound, PayloadTooLarge, UnsupportedMediaType
from app.imaging import decode_image, encode_png, to_display_rgb8
from app.models import Image
from app.schemas import ImagePublic, ImageUploadPublic, Page
from app.services import images as service
from app.services.dispatch import dispatch_jobs
from app.services.jobs import create_job
from app.settings import Settings

router = APIRouter(prefix="/projects/{project_id}/images", tags=["images"])

MAX_BATCH_FILES = 500


def image_public(image: Image, state: service.LabelState | None = None) -> ImagePublic:
    public = ImagePublic.model_validate(image)
    public.has_thumbnail = image.thumbnail_key is not None
    if state is not None:
        public.label_source, public.pending_review = state.source, state.pending_review
        public.label_version = state.version
    return public


def _limits(settings: Settings) -> service.UploadLimits:
    return service.UploadLimits(
        max_bytes=settings.max_upload_bytes, max_pixels=settings.max_image_pixels
    )


def _check_all(files: list[UploadFile], settings: Settings) -> list[service.CheckedUpload]:
    """Validate every file before storing any, so a bad file in a batch changes nothing."""
    checked = []
    for index, upload in enumerate(files):
        name = upload.filename or f"upload-{index}"
        data = read_capped(upload, settings.max_upload_bytes)
        try:
            checked.append(service.check_upload(data=data, filename=name, limits=_limits(settings)))
        except (InvalidInput, PayloadTooLarge, UnsupportedMediaType) as exc:
            # Name the file: in a batch, which one was refused is the first thing to know.
            if exc.message.startswith(name):
                raise
            raise type(exc)(f"{name}: {exc.message}", code=exc.code) from exc
    return checked


def _store_all(
    checked: list[service.CheckedUpload],
    runtime: RuntimeDep,
    session: SessionDep,
    project: ProjectViewer,
) -> list[ImageUploadPublic]:
    results: list[tuple[Image, bool, int | None]] = []
    for upload in checked:
        image, created = service.store_image(
            session=session, storage=runtime.storage, project=project, upload=upload
        )
        job_id = None
        if created:
            session.flush()
            job = create_job(
                session=session, kind="image_statistics", project_id=project.id, image_id=image.id
            )
            job_id = job.id
        results.append((image, created, job_id))
    session.commit()
    new_jobs = [(job_id, "image_statistics") for _, _, job_id in results if job_id is not None]
    dispatch_jobs(session_factory=runtime.session_factory, queue=runtime.queue, jobs=new_jobs)
    return [
        ImageUploadPublic(image=image_public(image), created=created, job_id=job_id)
        for image, created, job_id in results
    ]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=ImageUploadPublic,
    responses={
        status.HTTP_200_OK: {
            "model": ImageUploadPublic,
            "description": "The project holds this file already: that image",
        }
    },
)
def upload_image(
    request: Request,
    project: ProjectAnnotator,
    session: SessionDep,
    runtime: RuntimeDep,
    settings: SettingsDep,
    file: Annotated[UploadFile, File(description="PNG, JPEG, TIFF, BMP or DICOM")],
) -> JSONResponse:
    """Store one image; an identical file already in the project is returned with 200. A new
    image's ``Location`` names it."""
    checked = _check_all([file], settings)
    (result,) = _store_all(checked, runtime, session, project)
    if not result.created:
        return JSONResponse(status_code=status.HTTP_200_OK, content=result.model_dump(mode="json"))
    where = request.url_for("get_image", project_id=project.id, image_id=result.image.id)
    return JSONResponse(
        status_code=status.HTTP_201_CREATED,
        content=result.model_dump(mode="json"),
        headers={"Location": str(where)},
    )


@router.post("/batch", status_code=status.HTTP_201_CREATED, response_model=Page[ImageUploadPublic])
def upload_images(
    project: ProjectAnnotator,
    session: SessionDep,
    runtime: RuntimeDep,
    settings: SettingsDep,
    files: Annotated[list[UploadFile], File(description="Several images in one request")],
) -> Page[ImageUploadPublic]:
    """Store several images, all or nothing: one bad file rejects the batch."""
    if len(files) > MAX_BATCH_FILES:
        raise InvalidInput(f"at most {MAX_BATCH_FILES} files per batch, got {len(files)}")
    checked = _check_all(files, settings)
    results = _store_all(checked, runtime, session, project)
    return Page(data=results, count=len(results), offset=0, limit=len(results))


@router.get("", response_model=Page[ImagePublic])
def list_images(
    project: ProjectViewer,
    session: SessionDep,
    page: PaginationDep,
    label: Annotated[
        Literal["none", "any", "human", "machine", "edited"] | None,
        Query(
            description="Only images without a label (none), with one (any), or whose "
            "current label has this source"
        ),
    ] = None,
    pending_review: Annotated[
        bool | None,
        Query(
            description="Only images with (true) or without (false) a "
            "machine label waiting for review"
        ),
    ] = None,
    filename: Annotated[
        str | None, Query(max_length=300, description="Only names containing this, any case")
    ] = None,
    content_hash: Annotated[
        str | None,
        Query(pattern="^[0-9a-fA-F]{64}$", description="The SHA-256 of the file: is it here?"),
    ] = None,
    sort: Annotated[
        Literal["id", "-id", "filename", "-filename"],
        Query(description="Upload order (id) or file name; a leading - reverses"),
    ] = "id",
    archived: Annotated[
        bool, Query(description="The archived images instead of those in use")
    ] = False,
) -> Page[ImagePublic]:
    """Images, each with its current label's source and version and whether a machine label
    of it waits for review; filtered and sorted as asked (upload order by default)."""
    only = service.ImageFilter(
        label=label,
        pending_review=pending_review,
        filename=filename,
        content_hash=content_hash,
        sort=sort,
        archived=archived,
    )
    rows, count = service.list_images(
        session=session, project=project, offset=page.offset, limit=page.limit, only=only
    )
    states = service.label_states(session=session, image_ids=[i.id for i in rows])
    return Page(
        data=[image_public(i, states[i.id]) for i in rows],
        count=count,
        offset=page.offset,
        limit=page.limit,
    )


@router.get("/{image_id}", response_model=ImagePublic)
def get_image(image_id: IdPath, project: ProjectViewer, session: SessionDep) -> ImagePublic:
    image = service.get_image(session=session, project=project, image_id=image_id)
    states = service.label_states(session=session, image_ids=[image.id])
    return image_public(image, states[image.id])


@router.get("/{image_id}/file", response_class=Response)
def download_image(
    image_id: IdPath,
    request: Request,
    project: ProjectViewer,
    session: SessionDep,
    storage: StorageDep,
) -> Response:
    """The original file, byte for byte (ETag: its SHA-256; If-None-Match gets a 304)."""
    image = service.get_image(session=session, project=project, image_id=image_id)
    if (cached := unchanged(request, image.content_hash)) is not None:
        return cached
    name = image.original_filename.replace("/", "_")
    return Response(
        content=storage.get(image.storage_key),
        media_type=service.MEDIA_TYPES[image.format],
        headers={
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(name)}",
            **validators(image.content_hash),
        },
    )


@router.get("/{image_id}/display", response_class=Response)
def get_display_image(
    image_id: IdPath,
    request: Request,
    project: ProjectViewer,
    session: SessionDep,
    storage: StorageDep,
    settings: SettingsDep,
) -> Response:
    """The full-size image as an 8-bit RGB PNG that any browser can draw: for TIFF, DICOM
    and 16-bit images (windowed), which browsers cannot decode themselves."""
    image = service.get_image(session=session, project=project, image_id=image_id)
    tag = render_tag("display", image.content_hash)
    if (cached := unchanged(request, tag)) is not None:
        return cached  # before decoding: the costly part
    decoded = decode_image(
        storage.get(image.storage_key),
        max_bytes=settings.max_upload_bytes,
        max_pixels=settings.max_image_pixels,
    )
    png = encode_png(to_display_rgb8(decoded))
    return Response(content=png, media_type="image/png", headers=validators(tag))


@router.get("/{image_id}/thumbnail", response_class=Response)
def get_thumbnail(
    image_id: IdPath,
    request: Request,
    project: ProjectViewer,
    session: SessionDep,
    storage: StorageDep,
) -> Response:
    image = service.get_image(session=session, project=project, image_id=image_id)
    if image.thumbnail_key is None:
        raise NotFound(f"image {image_id} has no thumbnail yet; its statistics job is pending")
    tag = render_tag("thumbnail", image.content_hash)
    if (cached := unchanged(request, tag)) is not None:
        return cached
    content = storage.get(image.thumbnail_key)
    return Response(content=content, media_type="image/png", headers=validators(tag))
