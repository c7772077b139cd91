"""Proposals of many images, over several processes when the source runs on the CPU.

Classical (offline) proposals cost about 0.3 s per image at 128 px and 0.9-1.2 s at 256-512 px,
single-threaded (``bench/matching.py``), so a pool of hundreds of unlabelled images is the
longest stage of a round on a many-core machine unless the images are spread over processes. SAM
sources hold one model on one device and batch prompts themselves: they always run in this
process, and a worker count has no effect on them; the fast engine ("sam_fast") also gets the
images a batch at a time, so its image encoder runs on several at once.

Workers are started with "spawn": a forked child of a process whose torch or OpenMP threads
are running can deadlock. Results come back in the order of the images, so a run gives the
same proposals with any number of workers.
"""

from __future__ import annotations

import logging
import multiprocessing
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from itertools import repeat

import numpy as np

from samdsk.imageio import hash_array
from samdsk.proposals.cache import ProposalCache
from samdsk.proposals.registry import ProposalSource
from samdsk.types import Proposals

logger = logging.getLogger(__name__)

# Sources whose propose() is plain CPU work on settings that pickle: safe to copy to workers.
CPU_SOURCES = frozenset({"offline"})


def propose_many(
    source: ProposalSource,
    cache: ProposalCache | None,
    images: Sequence[np.ndarray],
    *,
    workers: int = 1,
    on_done: Callable[[int], None] | None = None,
) -> list[Proposals]:
    """Proposals of each H x W x 3 uint8 image in order, read from and stored in ``cache``
    if given. on_done(n) is called after the n-th image (1-based), for progress."""
    if workers < 1:
        raise ValueError(f"workers must be >= 1; got {workers}")
    found: list[Proposals] = []
    for proposals in _iterate(source, cache, images, workers):
        found.append(proposals)
        if on_done is not None:
            on_done(len(found))
    return found


def _iterate(
    source: ProposalSource,
    cache: ProposalCache | None,
    images: Sequence[np.ndarray],
    workers: int,
) -> Iterator[Proposals]:
    processes = min(workers, len(images))
    if processes > 1 and source.name not in CPU_SOURCES:
        logger.info("%s proposals run in one process; %d workers ignored", source.name, workers)
        processes = 1
    batched = getattr(source, "propose_batch", None)
    if processes <= 1 and batched is not None:
        yield from _batched(source, batched, cache, images)
        return
    if processes <= 1:
        for image in images:
            yield propose_one(source, cache, image)
        return
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=processes, mp_context=context) as pool:
        yield from pool.map(propose_one, repeat(source), repeat(cache), images)


def _batched(
    source: ProposalSource,
    propose_batch: Callable[[Sequence[np.ndarray]], list[Proposals]],
    cache: ProposalCache | None,
    images: Sequence[np.ndarray],
) -> Iterator[Proposals]:
    """A batching source (the fast SAM engine) gets the cache's misses ``image_batch`` at a
    time, so its encoder runs on several images at once; results still come in order."""
    size = max(1, int(getattr(source, "image_batch", 1)))
    for start in range(0, len(images), size):
        chunk = images[start : start + size]
        if cache is None:
            yield from propose_batch(chunk)
            continue
        hashes = [hash_array(image) for image in chunk]
        found: list[Proposals | None] = [
            cache.find(image, image_hash, source)
            for image, image_hash in zip(chunk, hashes, strict=True)
        ]
        missing = [index for index, proposals in enumerate(found) if proposals is None]
        computed = propose_batch([chunk[index] for index in missing]) if missing else []
        for index, proposals in zip(missing, computed, strict=True):
            found[index] = proposals
            cache.put(hashes[index], source, proposals)
        for result in found:
            assert result is not None
            yield result


def propose_one(
    source: ProposalSource, cache: ProposalCache | None, image: np.ndarray
) -> Proposals:
    """One image's proposals, through the cache when given (runs in a worker too)."""
    return source.propose(image) if cache is None else cache.get_or_compute(image, source)
