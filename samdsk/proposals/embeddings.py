"""On-disk cache of SAM image embeddings, keyed by image content, crop, weights and precision.

An image embedding depends only on the pixels (of the crop that was encoded), the weights
(their sha256), the model type and the precision the encoder ran in, so re-runs, denser
point grids and later interactive prompting read it instead of running the encoder again.
One ``.npz`` file per entry holding the full key text, checked on reading, so a file can never
answer for another image or model; writes are atomic (temporary file, then rename), like
``samdsk.proposals.cache``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

# 2: the engine's encoder computes attention fused (embeddings move at rounding level).
FORMAT_VERSION = 2


@dataclass(frozen=True)
class EmbeddingKey:
    """What an embedding depends on. crop: (x0, y0, x1, y1) of the encoded region in pixels."""

    image_hash: str
    crop: tuple[int, int, int, int]
    weights_sha256: str
    model_type: str
    precision: str

    def text(self) -> str:
        crop = ",".join(str(v) for v in self.crop)
        return (
            f"v{FORMAT_VERSION}|{self.image_hash}|{crop}|{self.weights_sha256}"
            f"|{self.model_type}|{self.precision}"
        )


class EmbeddingCache:
    """Embeddings stored under ``root/<model_type>/<key[:2]>/<key>.npz``.

    An embedding is a C x h x w float32 array (256 x 64 x 64 for SAM's 1024-pixel input).
    """

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    def get(self, key: EmbeddingKey) -> np.ndarray | None:
        """The stored C x h x w float32 embedding, or None when absent or unreadable (a
        damaged file is removed so that the next ``put`` rewrites it)."""
        path = self.path(key)
        if not path.is_file():
            return None
        try:
            with path.open("rb") as handle, np.load(handle, allow_pickle=False) as stored:
                if str(stored["key"]) != key.text():
                    logger.warning("embedding file %s belongs to another key; ignored", path)
                    return None
                embedding = np.asarray(stored["embedding"], dtype=np.float32)
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as error:
            logger.warning("damaged embedding cache file %s (%s); re-encoding", path, error)
            path.unlink(missing_ok=True)
            return None
        if embedding.ndim != 3:
            path.unlink(missing_ok=True)
            return None
        return embedding

    def put(self, key: EmbeddingKey, embedding: np.ndarray) -> Path:
        """Store a C x h x w embedding (as float32) atomically; returns the file's path."""
        if embedding.ndim != 3:
            raise ValueError(f"an embedding is C x h x w; got shape {embedding.shape}")
        path = self.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".npz")
        try:
            with os.fdopen(handle, "wb") as out:
                # Uncompressed: float embeddings barely compress and loading must stay cheap.
                np.savez(
                    out,
                    key=np.array(key.text()),
                    embedding=np.ascontiguousarray(embedding, dtype=np.float32),
                )
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return path

    def path(self, key: EmbeddingKey) -> Path:
        """Where the entry for ``key`` lives (whether or not it exists)."""
        digest = hashlib.sha256(key.text().encode()).hexdigest()
        return self.root / key.model_type / digest[:2] / f"{digest}.npz"
