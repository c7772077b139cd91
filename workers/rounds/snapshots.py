"""A round's training snapshots in the project's storage, so that a round handed back by a
stopping worker, or taken over from one that died, goes on training from where it stood.

Saved every few minutes and when the worker is asked to stop (just before the job hands
itself back); removed when the round ends, since they hold the optimizer's state too
(about three times the model's size)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from app.runtime import Runtime
from samdsk.model.resume import TrainingState
from workers.runner import stop_requested

log = logging.getLogger(__name__)
# Time lost to a crash, at most; a stop loses nothing. A snapshot of the default ResNet-34
# U-Net (weights, best weights, AdamW's two moments) is 391 MB and took 3.2 s to make and
# write on this project's 2-core test machine: saving more often would cost more than it saves.
SNAPSHOT_EVERY_S = 300.0


def snapshot_prefix(project_id: int, round_number: int) -> str:
    return f"models/project-{project_id}/round-{round_number}-training-"


class StoredSnapshots:
    """``samdsk.model.resume.SnapshotStore`` on the runtime's storage, for one round.

    ``keep_finished``: also save a training's last step, where more trainings follow it in
    the same stage (``machine_augment="auto"``), so that a resumed round does not train a
    finished policy again."""

    def __init__(
        self,
        runtime: Runtime,
        project_id: int,
        round_number: int,
        *,
        keep_finished: bool = False,
        every_s: float = SNAPSHOT_EVERY_S,
    ) -> None:
        self.runtime = runtime
        self.prefix = snapshot_prefix(project_id, round_number)
        self.keep_finished = keep_finished
        self.every_s = every_s
        self._last_saved = time.monotonic()

    def key(self, name: str) -> str:
        return f"{self.prefix}{name}.pt"

    def load(self, name: str) -> TrainingState | None:
        key = self.key(name)
        if not self.runtime.storage.exists(key):
            return None
        return TrainingState.from_bytes(self.runtime.storage.get(key))

    def offer(
        self, name: str, step: int, steps: int, snapshot: Callable[[], TrainingState]
    ) -> None:
        now = time.monotonic()
        stopping = stop_requested()
        due = now - self._last_saved >= self.every_s and step < steps
        if not (stopping or due or (self.keep_finished and step == steps)):
            return
        started = time.perf_counter()
        self.runtime.storage.put_at(self.key(name), snapshot().to_bytes())
        self._last_saved = time.monotonic()
        log.info(
            "training snapshot %s at step %d of %d saved in %.1f s%s",
            name,
            step,
            steps,
            time.perf_counter() - started,
            " (the worker is stopping)" if stopping else "",
        )


def discard_snapshots(runtime: Runtime, project_id: int, round_number: int) -> None:
    """Remove a round's training snapshots (its model is stored, or it will never resume)."""
    for key in runtime.storage.list_keys(snapshot_prefix(project_id, round_number)):
        runtime.storage.delete(key)
