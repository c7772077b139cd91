"""Which precision a model computes in on a device.

On CUDA, ``ModelConfig.amp`` turns on bf16 autocast. On a CPU, bf16 is fast only with native
bf16 instructions (AVX512-BF16 or AMX, e.g. AMD Zen 4 or Intel Sapphire Rapids and later):
measured on such a CPU (``bench/cpu_precision.py``, PH2, U-Net/ResNet-18 at 160 px, batch 8,
one thread), bf16 trained 1.6-1.7x and predicted 1.7-1.9x as fast as float32, with test
Dice within 0.3 points of it over two training seeds (see ``bench/RESULTS.md``). Elsewhere
oneDNN emulates bf16, slower than float32, so ``cpu_bf16`` is ignored there, with a warning.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path

import torch

from samdsk.model.config import ModelConfig

logger = logging.getLogger(__name__)

_CPU_BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})
_CPUINFO = Path("/proc/cpuinfo")


@functools.cache
def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX512-BF16 or AMX-BF16)."""
    for probe in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"):
        check = getattr(torch.cpu, probe, None)
        if check is not None and bool(check()):
            return True
    return bool(_CPU_BF16_FLAGS & _cpuinfo_flags())


def _cpuinfo_flags() -> set[str]:
    try:
        text = _CPUINFO.read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.partition(":")[2].split())
    return set()


def autocast_bf16(config: ModelConfig, device: torch.device) -> bool:
    """Whether to run the model under bf16 autocast on ``device``."""
    if device.type == "cuda":
        return config.amp
    if device.type != "cpu" or not config.cpu_bf16:
        return False
    if not cpu_has_native_bf16():
        _warn_emulated_bf16()
        return False
    return True


@functools.cache
def _warn_emulated_bf16() -> None:
    # once per process: every forward pass asks
    logger.warning(
        "cpu_bf16 is set but this CPU has no native bf16 (AVX512-BF16 or AMX); "
        "computing in float32, which is faster here"
    )


def precision_name(config: ModelConfig, device: torch.device) -> str:
    """``"bf16"`` or ``"float32"``: what ``autocast_bf16`` gives, for logs and reports."""
    return "bf16" if autocast_bf16(config, device) else "float32"
