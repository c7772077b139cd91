"""Cooperative interruption of long computations.

A caller that may have to stop (a worker asked to shut down) runs samdsk's work inside
``interruptible(check)``; the long computations call ``check_interrupt()`` between their
parts (each block of SAM's image encoder, each prompt batch of its mask decoder, each
segmentation of the offline source), and ``check`` stops them by raising. Outside such a
block nothing is checked. The check is per thread (a context variable), so concurrent
callers do not see each other's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

_check: ContextVar[Callable[[], None] | None] = ContextVar("samdsk_interrupt_check", default=None)


@contextmanager
def interruptible(check: Callable[[], None]) -> Iterator[None]:
    """Within the block, long computations call ``check`` between their parts."""
    token = _check.set(check)
    try:
        yield
    finally:
        _check.reset(token)


def check_interrupt() -> None:
    """Call the current ``interruptible`` check, if any (it raises to stop the work)."""
    check = _check.get()
    if check is not None:
        check()


def check_before_calls(modules: Iterable[torch.nn.Module]) -> None:
    """Make every call of each of ``modules`` check for an interrupt first: for models whose
    loops are not ours (``SamAutomaticMaskGenerator``), hooks are the only way in."""

    def hook(_module: torch.nn.Module, _inputs: Any) -> None:
        check_interrupt()

    for module in modules:
        module.register_forward_pre_hook(hook)
