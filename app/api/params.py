"""Query and path parameters: ids and offsets beyond what the database's columns hold are a
422, not a driver's overflow (SQLite) or range error (PostgreSQL) turned into a 500; and a
query parameter an operation does not take is a 422 too."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Path, Query, Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from app.errors import InvalidInput
from app.models import MAX_DB_INT

IdPath = Annotated[int, Path(ge=1, le=MAX_DB_INT)]
# Offsets too: no listing holds more rows than an id column can number.
OffsetQuery = Annotated[int, Query(ge=0, le=MAX_DB_INT)]


def refuse_unknown_query_parameters(request: Request) -> None:
    """A query parameter the operation does not take is a 422, not silently ignored: a
    misspelt filter (``?lable=none``) would otherwise answer with everything, unfiltered."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return
    known = _query_names(route)
    unknown = sorted(set(request.query_params) - known)
    if unknown:
        takes = ", ".join(sorted(known)) or "none"
        raise InvalidInput(
            f"unknown query parameter {unknown[0]!r}; this operation takes: {takes}",
            code="unknown_query_parameter",
        )


def _query_names(route: APIRoute) -> frozenset[str]:
    def names(dependant: Dependant) -> Iterator[str]:
        yield from (field.alias for field in dependant.query_params)
        for sub in dependant.dependencies:
            yield from names(sub)

    return frozenset(names(route.dependant))
