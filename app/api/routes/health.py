"""Health: can this process reach its database, broker and storage, and which weights are set."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from app import __version__
from app.api.deps import RuntimeDep
from app.runtime import Runtime
from app.schemas import ComponentHealth, HealthPublic

router = APIRouter(tags=["health"])


def _check_database(runtime: Runtime) -> ComponentHealth:
    try:
        with runtime.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # any driver error means unreachable
        return ComponentHealth(ok=False, detail=f"{type(exc).__name__}: {exc}"[:300])
    return ComponentHealth(ok=True, detail=runtime.engine.dialect.name)


def _check_broker(runtime: Runtime) -> ComponentHealth:
    try:
        detail = runtime.queue.ping()
    except Exception as exc:  # any transport error means unreachable
        return ComponentHealth(ok=False, detail=f"{type(exc).__name__}: {exc}"[:300])
    return ComponentHealth(ok=True, detail=detail)


def _check_storage(runtime: Runtime) -> ComponentHealth:
    try:
        runtime.storage.ping()
    except Exception as exc:  # any backend error means unreachable
        return ComponentHealth(ok=False, detail=f"{type(exc).__name__}: {exc}"[:300])
    return ComponentHealth(ok=True, detail=runtime.storage.describe())


def describe_weights(runtime: Runtime) -> tuple[str, str, str]:
    """(proposal source, proposal weights, segmentation encoder weights), in words."""
    settings = runtime.settings
    if settings.sam_checkpoint is None:
        source = "offline"
        weights = "none: no SAM checkpoint configured, classical region proposals are used"
    else:
        source = "sam"
        found = "" if settings.sam_checkpoint.is_file() else " (FILE NOT FOUND)"
        weights = f"SAM {settings.sam_model} from {settings.sam_checkpoint}{found}"
    encoder = (
        f"ImageNet encoder weights from {settings.encoder_weights}"
        if settings.encoder_weights
        else "random initialisation (no local encoder weights configured)"
    )
    return source, weights, encoder


@router.get("/health", response_model=HealthPublic)
def get_health(runtime: RuntimeDep) -> JSONResponse:
    """200 when database, broker and storage all answer, else 503 with the same body."""
    source, weights, encoder = describe_weights(runtime)
    health = HealthPublic(
        status="ok",
        version=__version__,
        database=_check_database(runtime),
        broker=_check_broker(runtime),
        storage=_check_storage(runtime),
        proposal_source=source,
        proposal_weights=weights,
        segmentation_weights=encoder,
    )
    healthy = health.database.ok and health.broker.ok and health.storage.ok
    health.status = "ok" if healthy else "degraded"
    return JSONResponse(status_code=200 if healthy else 503, content=health.model_dump())
