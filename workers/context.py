"""What a worker process builds once: settings, database, storage and queue."""

from __future__ import annotations

from functools import lru_cache

from app.runtime import Runtime, build_runtime
from app.settings import get_settings


@lru_cache
def worker_runtime() -> Runtime:
    return build_runtime(get_settings())


def reset_after_fork() -> None:
    """A forked pool process must not share the parent's database connections."""
    if worker_runtime.cache_info().currsize:
        worker_runtime().engine.dispose(close=False)
        worker_runtime.cache_clear()
