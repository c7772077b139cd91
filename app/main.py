"""The FastAPI application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from fastapi.routing import APIRoute

from app import __version__
from app.api.errors import install_error_handlers
from app.api.head import HeadAnsweredAsGet
from app.api.openapi import install_error_documentation
from app.api.params import refuse_unknown_query_parameters
from app.api.routes import (
    audit,
    auth,
    exports,
    health,
    image_archive,
    images,
    imports,
    jobs,
    labels,
    members,
    models,
    predictions,
    projects,
    review,
    rounds,
    tokens,
    users,
)
from app.frontend import install_frontend
from app.runtime import Runtime, build_runtime
from app.settings import Settings, get_settings

API_PREFIX = "/api/v1"


def operation_id(route: APIRoute) -> str:
    """Stable operation ids: the handler's name (``create_project``), not a generated hash."""
    return route.name


def create_app(settings: Settings | None = None, *, runtime: Runtime | None = None) -> FastAPI:
    """Build the app; the runtime (engine, storage, queue) is built here, never at import."""
    owns_runtime = runtime is None
    runtime = runtime or build_runtime(settings or get_settings())

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        if owns_runtime:  # a runtime handed in is closed by whoever made it
            runtime.close()

    app = FastAPI(
        title="SamDSK",
        version=__version__,
        description="Label-efficient medical image segmentation with SAM and domain knowledge.",
        generate_unique_id_function=operation_id,
        lifespan=lifespan,
    )
    app.state.runtime = runtime
    install_error_handlers(app)
    routers = [
        module.router
        for module in (
            health, auth, users, tokens, projects, members, images, image_archive, labels,
            rounds, review, predictions, models, exports, imports, jobs, audit,
        )
    ]  # fmt: skip
    for router in routers:
        app.include_router(
            router, prefix=API_PREFIX, dependencies=[Depends(refuse_unknown_query_parameters)]
        )
    install_error_documentation(app, routers)
    app.add_middleware(HeadAnsweredAsGet)  # the API's and the page's own URLs

    install_frontend(app)  # the review page at /, its modules under /static/

    return app
