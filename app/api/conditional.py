"""Conditional GET for what never changes under its URL: an image's file and renders, a label
version's mask, a candidate's mask. Each answer carries an ETag, and a client (the review
page's browser cache included) that asks again with ``If-None-Match`` gets a bodiless 304:
no bytes sent, and for a display render no decoding either. ``no-cache`` makes the browser
ask each time, so nothing stale is shown after a server's data is replaced."""

from __future__ import annotations

from fastapi import Request, Response

from app import __version__


def validators(etag: str) -> dict[str, str]:
    return {"ETag": f'"{etag}"', "Cache-Control": "private, no-cache"}


def render_tag(kind: str, source: str) -> str:
    """The tag of something rendered from ``source``: a new release may render differently."""
    return f"{kind}-{__version__}-{source}"


def unchanged(request: Request, etag: str) -> Response | None:
    """A 304 when the client holds this version already, else None (answer in full)."""
    asked = request.headers.get("if-none-match")
    if asked is None:
        return None
    held = {tag.strip().removeprefix("W/") for tag in asked.split(",")}
    if f'"{etag}"' in held or "*" in held:
        return Response(status_code=304, headers=validators(etag))
    return None
