"""The OpenAPI document says what each operation's failures look like: the one error envelope
of ``app.api.errors``, under every status the operation can answer with. Left to itself,
FastAPI documents a 422 body the API never sends, and no other failure, so a client generated
from the document would misread every error."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, FastAPI, params
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field

from app.api.deps import get_current_user, get_superuser


class ErrorDetail(BaseModel):
    code: str = Field(description="What went wrong, for programs: not_found, conflict, ...")
    message: str = Field(description="What went wrong, for people")
    details: Any = Field(
        None,
        description="Where given: the refused fields of a request (422), or the facts of a "
        "conflict (409), such as who decided a candidate",
    )


class ErrorBody(BaseModel):
    """Every answer that is not a success."""

    error: ErrorDetail


WHY = {
    401: "Not logged in: no token, or one unknown, expired or revoked",
    403: "The caller's role does not allow this",
    404: "No such resource, or a project the caller is not a member of",
    409: "The request conflicts with the current state (the message says how)",
    413: "The upload is larger than the server accepts",
    415: "The upload is not an image or mask format the server reads",
    422: "The request or its content is invalid (the message names the field or the entry)",
    429: "Too many failed password checks: wait Retry-After seconds",
}
# Operations that check a password, and so count failures against the login limit.
PASSWORD_CHECKS = {"log_in", "change_my_password"}
READS = {"GET", "HEAD"}


def _dependants(dependant: Dependant) -> Iterator[Dependant]:
    yield dependant
    for sub in dependant.dependencies:
        yield from _dependants(sub)


def error_statuses(route: APIRoute) -> list[int]:
    """The 4xx statuses ``route`` can answer with, from what it depends on and takes."""
    parts = list(_dependants(route.dependant))
    calls = {part.call for part in parts}
    path_ids = any(part.path_params for part in parts)
    files = any(
        isinstance(field.field_info, params.File) for part in parts for field in part.body_params
    )
    authenticated = get_current_user in calls
    found = set()
    if authenticated or route.name in PASSWORD_CHECKS:
        found.add(401)
    if authenticated and (get_superuser in calls or "{project_id}" in route.path_format):
        found.add(403)
    if path_ids:
        found.add(404)
    found.add(422)  # any operation: a query parameter it does not take
    writes = not (route.methods or set()) <= READS and route.name not in PASSWORD_CHECKS
    if writes and (path_ids or route.body_field):
        found.add(409)
    if files:
        found.update((413, 415))
    if route.name in PASSWORD_CHECKS:
        found.add(429)
    return sorted(found)


def install_error_documentation(app: FastAPI, routers: list[APIRouter]) -> None:
    """Generate the document once, with the envelope under each operation's error statuses
    and without FastAPI's unused validation-error schemas. ``routers`` are those the app
    includes: their routes, keyed by name (the operation id), say what each depends on."""
    statuses = {
        route.name: error_statuses(route)
        for router in routers
        for route in router.routes
        if isinstance(route, APIRoute)
    }

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
        )
        schemas = document.setdefault("components", {}).setdefault("schemas", {})
        error_schema = ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(error_schema.pop("$defs", {}))
        schemas["ErrorBody"] = error_schema
        envelope = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
        for operations in document["paths"].values():
            for operation in operations.values():
                responses = operation.setdefault("responses", {})
                responses.pop("422", None)  # FastAPI's, in a shape the API never sends
                for status in statuses.get(operation.get("operationId", ""), []):
                    responses[str(status)] = {"description": WHY[status]}
                for code, response in responses.items():  # a route's own 4xx included
                    if code.startswith("4"):
                        response["content"] = envelope
        for unused in ("HTTPValidationError", "ValidationError"):
            schemas.pop(unused, None)
        app.openapi_schema = document
        return document

    app.openapi = openapi  # type: ignore[method-assign]
