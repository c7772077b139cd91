"""How many intra-op threads a CPU training run should use.

Torch's OpenMP threads spin while they wait for each other. When another process keeps one
of two cores busy, a two-thread run then stalls at every parallel region: measured on a 2-core
machine, Unet/resnet18 at 160 px took 7.2 s per step with 2 threads against 1.3 s with 1.
So the run takes only the cores that are free when it starts; the count is fixed for the run,
because results differ (slightly) between thread counts. That also means two runs of the same
seed repeat bit for bit only where they start on the same count: a caller who needs that (a
test, a published experiment) pins the count (``ModelConfig.cpu_threads``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

SAMPLE_SECONDS = 0.25
_PROC_STAT = Path("/proc/stat")


def usable_cores() -> list[int]:
    """The CPU ids this process may run on (its affinity mask, e.g. a container's limit)."""
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return list(range(os.cpu_count() or 1))


def busy_cores_elsewhere(cores: list[int], seconds: float = SAMPLE_SECONDS) -> float:
    """Cores' worth of CPU time other processes used on ``cores`` over the next ``seconds``.

    Reads ``/proc/stat`` (Linux); returns 0.0 where it cannot be read. The caller must be
    idle meanwhile, as this process's own use counts as "elsewhere".
    """
    before = _core_times(cores)
    time.sleep(seconds)
    after = _core_times(cores)
    if before is None or after is None:
        return 0.0
    busy = after[0] - before[0]
    total = busy + after[1] - before[1]
    return len(cores) * busy / total if total > 0 else 0.0


def cpu_thread_budget(num_workers: int = 0, *, sample: bool = True) -> int:
    """Threads for a CPU training run, >= 1: the cores that other processes leave free (when
    ``sample``), minus loader workers, capped by torch's current setting (so a caller's
    ``torch.set_num_threads(n)`` is an upper bound and pins the count when n = 1)."""
    cores = usable_cores()
    cap = min(torch.get_num_threads(), len(cores) - num_workers)
    if cap <= 1 or not sample:
        return max(1, cap)
    free = len(cores) - busy_cores_elsewhere(cores)
    return max(1, min(cap, round(free) - num_workers))


@contextmanager
def cpu_threads_for(
    device: torch.device, num_workers: int = 0, pinned: int | None = None
) -> Iterator[int]:
    """Within the block torch uses ``pinned`` threads, or without it
    ``cpu_thread_budget(num_workers)``, when ``device`` is the CPU (the count is left alone
    for a GPU); the caller's count comes back after. Yields the count in use, for the log."""
    if pinned is not None and pinned < 1:
        raise ValueError(f"pinned thread count must be >= 1; got {pinned}")
    before = torch.get_num_threads()
    if device.type == "cpu":
        torch.set_num_threads(pinned or cpu_thread_budget(num_workers))
    try:
        yield torch.get_num_threads()
    finally:
        torch.set_num_threads(before)


def _core_times(cores: list[int]) -> tuple[int, int] | None:
    """(busy, idle) jiffies summed over ``cores``, or None without a readable /proc/stat."""
    try:
        lines = _PROC_STAT.read_text().splitlines()
    except OSError:
        return None
    wanted, busy, idle = {f"cpu{core}" for core in cores}, 0, 0
    for line in lines:
        fields = line.split()
        if fields and fields[0] in wanted:
            # user nice system idle iowait irq softirq steal ...; guest time is inside user.
            values = [int(v) for v in fields[1:9]]
            busy += sum(values) - values[3] - values[4]
            idle += values[3] + values[4]
    return (busy, idle) if busy + idle > 0 else None
