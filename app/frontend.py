"""The review page: static ES modules from ``frontend/``, served by the API itself.

No bundler and no build step: the browser loads ``index.html``, whose import map resolves the
vendored libraries. Everything the page knows comes from ``/api/v1``.
"""

from __future__ import annotations

import os
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from starlette.responses import Response
from starlette.types import Scope

FRONTEND_DIR = Path(__file__).resolve().parents[1] / "frontend"
# Modules change with each release and have no hashed names, so the browser revalidates them
# (a cheap 304) instead of running a stale mix of old and new modules.
NO_STALE = {"Cache-Control": "no-cache"}


class _RevalidatedFiles(StaticFiles):
    """Static files that the browser must revalidate before reuse."""

    def file_response(
        self,
        full_path: str | os.PathLike[str],
        stat_result: os.stat_result,
        scope: Scope,
        status_code: int = 200,
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers.update(NO_STALE)
        return response


def install_frontend(app: FastAPI, directory: Path = FRONTEND_DIR) -> None:
    """Serve the page at ``/`` and its modules, styles and vendored libraries at ``/static/``."""
    index = directory / "index.html"
    if not index.is_file():
        return  # installed without the checkout's frontend/: the API alone
    app.mount("/static", _RevalidatedFiles(directory=directory), name="static")

    @app.get("/", include_in_schema=False)
    def review_page() -> FileResponse:
        return FileResponse(index, media_type="text/html", headers=NO_STALE)
