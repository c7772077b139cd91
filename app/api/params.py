"""Bounded integer parameters: ids and offsets beyond what the database's columns hold are a
422, not a driver's overflow (SQLite) or range error (PostgreSQL) turned into a 500."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query

from app.models import MAX_DB_INT

IdPath = Annotated[int, Path(ge=1, le=MAX_DB_INT)]
# Offsets too: no listing holds more rows than an id column can number.
OffsetQuery = Annotated[int, Query(ge=0, le=MAX_DB_INT)]
