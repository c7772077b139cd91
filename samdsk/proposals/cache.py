"""On-disk cache of proposals, keyed by image content and proposal source settings.

Proposals depend only on the pixels and the source (name, settings, weights), so later rounds
and re-runs read them instead of running SAM again. One compressed ``.npz`` file per entry:
masks bit-packed (8 pixels per byte), scores float32, and the full key text, which is checked
on reading so that a file can never answer for another image or source. Writes go to a
temporary file in the same folder and are renamed into place, so a reader never sees half a
file and concurrent writers of one entry simply replace each other's identical result.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from samdsk.errors import ShapeError
from samdsk.imageio import hash_array
from samdsk.proposals.registry import ProposalSource
from samdsk.types import Proposals

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1


class ProposalCache:
    """Proposals stored under ``root/<source name>/<key[:2]>/<key>.npz``."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def get_or_compute(
        self, image: np.ndarray, source: ProposalSource, *, image_hash: str | None = None
    ) -> Proposals:
        """Cached proposals of an H x W x 3 uint8 image, computed and stored on a miss.

        image_hash: ``samdsk.imageio.hash_array(image)`` when the caller already has it.
        """
        image_hash = hash_array(image) if image_hash is None else image_hash
        found = self.find(image, image_hash, source)
        if found is not None:
            return found
        proposals = source.propose(image)
        self.put(image_hash, source, proposals)
        return proposals

    def find(self, image: np.ndarray, image_hash: str, source: ProposalSource) -> Proposals | None:
        """The stored proposals of ``image`` (whose hash is ``image_hash``), or None when
        absent, unreadable or of another size than the image."""
        found = self.get(image_hash, source)
        if found is not None and found.masks.shape[1:] == image.shape[:2]:
            return found
        return None

    def get(self, image_hash: str, source: ProposalSource) -> Proposals | None:
        """The stored proposals, or None when absent or unreadable (a damaged file is
        removed, so the next ``get_or_compute`` recomputes and rewrites it)."""
        key_text = _key_text(image_hash, source)
        path = self.path(image_hash, source)
        if not path.is_file():
            return None
        try:
            # Open the file here: np.load leaks its own handle when the archive is damaged.
            with path.open("rb") as handle, np.load(handle, allow_pickle=False) as stored:
                if str(stored["key"]) != key_text:
                    logger.warning("cache file %s belongs to another key; ignored", path)
                    return None
                count, height, width = (int(v) for v in stored["shape"])
                bits = np.unpackbits(stored["masks"], axis=1, count=height * width)
                return Proposals(
                    masks=bits.astype(bool).reshape(count, height, width),
                    scores=stored["scores"].astype(np.float32),
                    source=str(stored["source"]),
                )
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, ShapeError) as error:
            logger.warning("damaged proposal cache file %s (%s); recomputing", path, error)
            path.unlink(missing_ok=True)
            return None

    def put(self, image_hash: str, source: ProposalSource, proposals: Proposals) -> Path:
        """Store proposals atomically; returns the file's path."""
        path = self.path(image_hash, source)
        path.parent.mkdir(parents=True, exist_ok=True)
        count, height, width = proposals.masks.shape
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".npz")
        try:
            with os.fdopen(handle, "wb") as out:
                np.savez_compressed(
                    out,
                    key=np.array(_key_text(image_hash, source)),
                    shape=np.array([count, height, width], dtype=np.int64),
                    masks=np.packbits(proposals.masks.reshape(count, height * width), axis=1),
                    scores=proposals.scores.astype(np.float32),
                    source=np.array(proposals.source),
                )
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return path

    def path(self, image_hash: str, source: ProposalSource) -> Path:
        """Where the entry of this image and source lives (whether or not it exists)."""
        key = hashlib.sha256(_key_text(image_hash, source).encode()).hexdigest()
        return self.root / source.name / key[:2] / f"{key}.npz"


def _key_text(image_hash: str, source: ProposalSource) -> str:
    return f"v{FORMAT_VERSION}|{image_hash}|{source.name}|{source.settings_key()}"
