"""Reading uploaded files with a byte cap, so an oversized body is refused, not buffered.

Synchronous on purpose: the handlers that upload read, decode and store in FastAPI's thread
pool. On the event loop, a handler waiting for the database (SQLite's write lock, held by
another request that itself waits for the loop) would stall every request until the lock's
timeout."""

from __future__ import annotations

from fastapi import UploadFile

from app.errors import PayloadTooLarge


def read_capped(upload: UploadFile, max_bytes: int) -> bytes:
    upload.file.seek(0)
    data = upload.file.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise PayloadTooLarge(
            f"{upload.filename or 'upload'} is larger than the limit of {max_bytes} bytes"
        )
    return data
