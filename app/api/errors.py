"""The one place where exceptions become HTTP responses: ``{"error": {code, message}}``.

Every answer that is not a success carries the envelope, including those that Starlette makes
itself (no route: 404, wrong method: 405) and errors nobody foresaw (500), so a client needs
one way to read a failure.
"""

from __future__ import annotations

import logging
import re
from http import HTTPStatus

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException
from starlette.responses import Response

from app.errors import AppError, TooManyRequests, Unauthorized

log = logging.getLogger(__name__)

# Statuses whose answer has no body by definition (RFC 9110).
BODILESS = {204, 205, 304}


def _error(status: int, code: str, message: str, **extra: object) -> JSONResponse:
    return JSONResponse(
        status_code=status, content={"error": {"code": code, "message": message, **extra}}
    )


async def _app_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AppError)
    extra = {"details": exc.details} if exc.details is not None else {}
    response = _error(exc.status_code, exc.code, exc.message, **extra)
    if isinstance(exc, Unauthorized):
        response.headers["WWW-Authenticate"] = "Bearer"
    if isinstance(exc, TooManyRequests):
        response.headers["Retry-After"] = str(exc.retry_after)
    return response


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    details = [
        {"loc": list(err.get("loc", ())), "msg": str(err.get("msg", ""))} for err in exc.errors()
    ]
    errors = exc.errors()
    first = errors[0] if errors else {"loc": (), "msg": "invalid request"}
    said = str(first.get("msg", "")).removeprefix("Value error, ")
    message = f"{_where(list(first.get('loc', ())))}: {said}"
    unparsed = next((err for err in exc.errors() if err.get("type") == "json_invalid"), None)
    if unparsed is not None:  # say so in words, not "body.0: JSON decode error"
        reason = (unparsed.get("ctx") or {}).get("error", "")
        message = f"the request body is not valid JSON{f' ({reason})' if reason else ''}"
    return _error(422, "invalid_request", message, details=details)


def _where(loc: list[object]) -> str:
    """A field as a person reads it: ``knowledge.polyp.min_regions`` for a body's field (the
    details keep pydantic's whole ``loc``), ``query parameter limit`` for the others."""
    parts = [str(part) for part in loc]
    if parts and parts[0] == "body":
        return ".".join(parts[1:]) or "request body"
    if len(parts) >= 2 and parts[0] in ("query", "path", "header", "cookie"):
        return f"{parts[0]} parameter {'.'.join(parts[1:])}"
    return ".".join(parts) or "request"


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:  # a status outside the standard's list
        return ""


async def _http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own refusals (no such route, method or static file) in the envelope, with
    the headers they carry (``Allow`` on a 405)."""
    assert isinstance(exc, HTTPException)
    if exc.status_code in BODILESS:
        return Response(status_code=exc.status_code, headers=exc.headers)
    phrase = _phrase(exc.status_code)
    # The reason phrase as a code, like AppError's: 405 is method_not_allowed.
    code = re.sub(r"[^a-z]+", "_", phrase.lower()).strip("_") or "http_error"
    message = str(exc.detail)
    if message == phrase:  # the bare default: say what was asked
        message = f"{phrase.lower()}: {request.method} {request.url.path}"
    response = _error(exc.status_code, code, message)
    response.headers.update(exc.headers or {})
    return response


async def _data_error(request: Request, exc: Exception) -> JSONResponse:
    """PostgreSQL refuses NUL characters in text, which JSON and URLs can carry (SQLite takes
    them): the caller's input, not a bug. The transaction is rolled back, so nothing changed."""
    if "NUL" in str(getattr(exc, "orig", exc)):
        return _error(422, "invalid_input", "text must not contain NUL (\\u0000) characters")
    return await _unexpected_error(request, exc)


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    """A bug: the envelope without details for the client, the traceback for the log.

    Starlette's ServerErrorMiddleware calls this and then re-raises, so the ASGI server logs
    the exception as well; this line adds which request failed."""
    log.error("unhandled error in %s %s", request.method, request.url.path, exc_info=exc)
    return _error(500, "internal_error", "internal server error")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(AppError, _app_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(DataError, _data_error)
    app.add_exception_handler(Exception, _unexpected_error)
