"""Bounded integer parameters: ids and offsets beyond a 64-bit database integer are a 422, not
a driver's overflow (SQLite) or range error (PostgreSQL) turned into a 500."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query

# The largest value both SQLite's INTEGER and PostgreSQL's BIGINT hold.
MAX_DB_INT = 2**63 - 1

IdPath = Annotated[int, Path(ge=1, le=MAX_DB_INT)]
OffsetQuery = Annotated[int, Query(ge=0, le=MAX_DB_INT)]
