"""Proposals over several processes: the same masks in the same order as one process."""

from __future__ import annotations

import argparse
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from samdsk.cli import build_parser
from samdsk.errors import ConfigError
from samdsk.imageio import hash_array, read_image
from samdsk.knowledge import ClassKnowledge
from samdsk.model import ModelConfig
from samdsk.proposals import FastSamProposalSource, OfflineProposalSource, ProposalCache
from samdsk.proposals.parallel import propose_many
from samdsk.rounds import RoundConfig, propose_all
from samdsk.types import Proposals
from tests.tiny_sam import save_tiny_sam

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="module")
def images() -> list[np.ndarray]:
    """Four real images of two data sets at 64 px: different shapes and contents."""
    found = []
    for dataset in ("ph2", "kvasir_seg"):
        folder = DATA / dataset / "images"
        if not folder.is_dir():
            pytest.skip(f"real data not found at {folder}")
        for path in sorted(folder.glob("*.jpg"))[:2]:
            full = Image.fromarray(read_image(path))
            found.append(np.asarray(full.resize((64, round(64 * full.height / full.width)))))
    return found


def _same(a: list[Proposals], b: list[Proposals]) -> None:
    assert len(a) == len(b)
    for one, other in zip(a, b, strict=True):
        np.testing.assert_array_equal(one.masks, other.masks)
        np.testing.assert_array_equal(one.scores, other.scores)


def test_workers_give_the_masks_of_one_process_in_image_order(
    images: list[np.ndarray],
) -> None:
    source = OfflineProposalSource(work_size=64)
    alone = propose_many(source, None, images)
    done: list[int] = []
    spread = propose_many(source, None, images, workers=3, on_done=done.append)
    _same(alone, spread)
    assert [p.masks.shape[1:] for p in spread] == [i.shape[:2] for i in images]
    assert done == [1, 2, 3, 4]


def test_workers_fill_the_cache_that_a_later_run_reads(
    tmp_path: Path, images: list[np.ndarray]
) -> None:
    source, cache = OfflineProposalSource(work_size=64), ProposalCache(tmp_path)
    spread = propose_many(source, cache, images, workers=2)
    assert len(list(tmp_path.rglob("*.npz"))) == len(images)

    @dataclass
    class Refusing:
        """Answers only from the cache: computing would fail the test."""

        name: str = "offline"

        def settings_key(self) -> str:
            return source.settings_key()

        def describe(self) -> str:
            return source.describe()

        def propose(self, image: np.ndarray) -> Proposals:
            raise AssertionError("a cached image was computed again")

    _same(spread, propose_many(Refusing(), cache, images))


@dataclass
class InProcessSource:
    """A SAM-like source that holds a lock (which cannot be pickled) and notes its thread:
    sending it to a worker process would fail."""

    inner: OfflineProposalSource = field(
        default_factory=lambda: OfflineProposalSource(work_size=64)
    )
    lock: threading.Lock = field(default_factory=threading.Lock)
    name: str = "sam"
    callers: set[int] = field(default_factory=set)

    def settings_key(self) -> str:
        return "in-process"

    def describe(self) -> str:
        return "a source bound to this process"

    def propose(self, image: np.ndarray) -> Proposals:
        with self.lock:
            self.callers.add(threading.get_ident())
        return self.inner.propose(image)


def test_sam_sources_stay_in_this_process(
    images: list[np.ndarray], caplog: pytest.LogCaptureFixture
) -> None:
    source = InProcessSource()
    with caplog.at_level(logging.INFO, logger="samdsk.proposals.parallel"):
        found = propose_many(source, None, images, workers=4)
    assert source.callers == {threading.get_ident()}
    assert "4 workers ignored" in caplog.text
    _same(found, propose_many(source.inner, None, images))


def test_the_fast_engine_gets_the_caches_misses_a_batch_at_a_time(
    images: list[np.ndarray], tmp_path: Path
) -> None:
    weights = save_tiny_sam(tmp_path / "sam_vit_tiny.pth", logit_scale=30.0, bias_std=2.0)
    source = FastSamProposalSource(
        weights, "vit_tiny", device="cpu", points_per_side=4, image_batch=3
    )
    batches: list[int] = []
    propose_batch = source.propose_batch

    def counted(chunk: Sequence[np.ndarray]) -> list[Proposals]:
        batches.append(len(chunk))
        return propose_batch(chunk)

    object.__setattr__(source, "propose_batch", counted)
    cache = ProposalCache(tmp_path / "cache")
    cache.put(hash_array(images[1]), source, source.propose(images[1]))
    found = propose_many(source, cache, images, workers=2)
    assert batches == [2, 1]  # images 0 and 2, then 3: image 1 came from the cache
    _same(found, [source.propose(image) for image in images])
    assert propose_many(source, cache, images) and batches == [2, 1]  # all cached now


def test_round_proposals_use_the_configured_workers(images: list[np.ndarray]) -> None:
    stages: list[tuple[str, float]] = []
    source = OfflineProposalSource(work_size=64)
    spread = propose_all(source, None, images, lambda *s: stages.append(s), workers=2)
    _same(spread, propose_many(source, None, images))
    assert stages == [("propose", n / 4) for n in (1, 2, 3, 4)]


def test_worker_counts_below_one_are_refused(images: list[np.ndarray]) -> None:
    with pytest.raises(ValueError, match="workers must be >= 1"):
        propose_many(OfflineProposalSource(work_size=64), None, images, workers=0)
    with pytest.raises(ConfigError, match="proposal_workers must be >= 1"):
        RoundConfig(
            model=ModelConfig(num_classes=1),
            knowledge=(ClassKnowledge(),),
            proposal_workers=0,
        )


def test_command_line_takes_a_positive_worker_count(capsys: pytest.CaptureFixture[str]) -> None:
    parser: argparse.ArgumentParser = build_parser()
    base = ["experiment", "--data", "d", "--out", "o"]
    assert parser.parse_args(base).proposal_workers == 1
    assert parser.parse_args([*base, "--proposal-workers", "6"]).proposal_workers == 6
    with pytest.raises(SystemExit) as stopped:
        parser.parse_args([*base, "--proposal-workers", "0"])
    assert stopped.value.code == 2
    assert "positive integer" in capsys.readouterr().err
