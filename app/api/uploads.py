"""Reading uploaded files with a byte cap, so an oversized body is refused, not buffered."""

from __future__ import annotations

from fastapi import UploadFile

from app.errors import PayloadTooLarge


async def read_capped(upload: UploadFile, max_bytes: int) -> bytes:
    data = await upload.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise PayloadTooLarge(
            f"{upload.filename or 'upload'} is larger than the limit of {max_bytes} bytes"
        )
    return data
