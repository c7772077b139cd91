"""Reading an uploaded zip without trusting it: entry count, total unpacked size and each
entry's size are checked from the directory before anything is unpacked, names that could
reach outside a folder are refused, and reads are capped (a zip cannot unpack more than an
entry's declared size, which the caps bound)."""

from __future__ import annotations

import re
import zipfile
import zlib
from dataclasses import dataclass
from typing import IO

from app.errors import InvalidInput, PayloadTooLarge

# Created by archivers beside the real files; skipped, not refused.
_ARCHIVER_LITTER = ("__MACOSX/",)
_DRIVE = re.compile(r"^[A-Za-z]:")
_READ_ERRORS = (
    zipfile.BadZipFile,
    zlib.error,
    EOFError,
    OSError,
    NotImplementedError,
    RuntimeError,
)


@dataclass(frozen=True)
class ArchiveLimits:
    max_zip_bytes: int  # the zip itself, and the sum of its entries' unpacked sizes
    max_entries: int
    max_entry_bytes: int


def open_archive(file: IO[bytes], limits: ArchiveLimits) -> zipfile.ZipFile:
    """Open a seekable zip upload after checking its size, directory and entry names."""
    size = file.seek(0, 2)
    file.seek(0)
    if size > limits.max_zip_bytes:
        raise PayloadTooLarge(f"the zip is larger than the limit of {limits.max_zip_bytes} bytes")
    try:
        archive = zipfile.ZipFile(file)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError) as exc:
        raise InvalidInput(f"the upload is not a readable zip archive: {exc}") from exc
    entries = archive.infolist()
    if len(entries) > limits.max_entries:
        raise PayloadTooLarge(f"the zip holds {len(entries)} entries; at most {limits.max_entries}")
    total = 0
    for info in entries:
        check_entry_name(info.filename)
        if info.flag_bits & 0x1:
            raise InvalidInput(f"{info.filename}: encrypted entries are not supported")
        if info.file_size > limits.max_entry_bytes:
            raise PayloadTooLarge(
                f"{info.filename}: unpacks to {info.file_size} bytes; each file may have at "
                f"most {limits.max_entry_bytes}"
            )
        total += info.file_size
    if total > limits.max_zip_bytes:
        raise PayloadTooLarge(
            f"the zip unpacks to {total} bytes; at most {limits.max_zip_bytes} are accepted"
        )
    return archive


def check_entry_name(name: str) -> None:
    """Refuse names that are absolute, hold a drive, a backslash, a control character or a
    ``..`` part: whoever unpacks the zip later must not write outside its folder."""
    parts = name.split("/")
    if (
        name.startswith("/")
        or _DRIVE.match(name)
        or "\\" in name
        or any(ord(ch) < 0x20 for ch in name)
        or ".." in parts
    ):
        raise InvalidInput(f"{name!r}: unsafe path in the zip (absolute, '..' or backslash)")


def is_litter(name: str) -> bool:
    """Folders, and what archivers add on their own (``__MACOSX/``, ``.DS_Store``)."""
    base = name.rstrip("/").rsplit("/", 1)[-1]
    return name.endswith("/") or name.startswith(_ARCHIVER_LITTER) or base.startswith(".")


def read_entry(archive: zipfile.ZipFile, name: str, max_bytes: int) -> bytes:
    try:
        with archive.open(name) as handle:
            data = handle.read(max_bytes + 1)
    except _READ_ERRORS as exc:
        raise InvalidInput(f"{name}: cannot be unpacked: {exc}") from exc
    if len(data) > max_bytes:
        raise PayloadTooLarge(f"{name}: larger than the limit of {max_bytes} bytes")
    return data
