"""Progress of a running round: per-stage fractions and timings written to the round row,
the job's lease renewed, and a cancel request noticed, all at most once a second; a stopping
worker noticed at every update."""

from __future__ import annotations

import time
from typing import Any

from app.db import session_scope
from app.models import Round
from app.services.rounds import overall_progress
from workers.runner import JobCancelled, JobContext, raise_if_stopping


class RoundTracker:
    def __init__(self, context: JobContext, round_id: int, min_interval: float = 1.0) -> None:
        self.context = context
        self.round_id = round_id
        self.min_interval = min_interval
        self._last = 0.0
        self._stage_started: dict[str, float] = {}

    def begin(self, stage: str) -> None:
        """Start (or go on with) ``stage``. A resumed round's stage keeps the progress and the
        seconds its earlier attempts recorded, so neither jumps back to zero."""
        with session_scope(self.context.runtime.session_factory) as session:
            round_ = session.get(Round, self.round_id)
            earlier = dict(round_.stages.get(stage, {})) if round_ is not None else {}
        self._stage_started[stage] = time.monotonic() - float(earlier.get("seconds", 0.0))
        self.update(stage, float(earlier.get("progress", 0.0)), force=True)

    def update(self, stage: str, fraction: float, *, force: bool = False) -> None:
        """Record ``fraction`` (0..1) of ``stage``; raises JobCancelled if a cancel was asked,
        WorkerStopping if this worker is shutting down."""
        raise_if_stopping()  # before the once-a-second limit: a stop must not wait for it
        now = time.monotonic()
        if not force and now - self._last < self.min_interval:
            return
        self._last = now
        seconds = now - self._stage_started.get(stage, now)
        with session_scope(self.context.runtime.session_factory) as session:
            round_ = session.get(Round, self.round_id)
            if round_ is None or round_.cancel_requested:
                raise JobCancelled(f"round {self.round_id} was cancelled")
            stages: dict[str, Any] = {k: dict(v) for k, v in round_.stages.items()}
            stages[stage] = {"progress": round(min(max(fraction, 0.0), 1.0), 4), "seconds": seconds}
            round_.stages = stages
            round_.stage = stage
            round_.progress = overall_progress(stages)
            progress = round_.progress
        self.context.progress(progress, f"{stage} {fraction:.0%}")

    def end(self, stage: str) -> None:
        self.update(stage, 1.0, force=True)
