"""bf16 on the CPU: only where the CPU computes it natively, only when asked, and close to
float32 where it runs."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from samdsk.cli import build_parser, model_config
from samdsk.errors import ConfigError
from samdsk.model import ModelConfig, precision, predict_probabilities, train_model
from tests.test_samdsk_model import disc_samples

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CPU, CUDA = torch.device("cpu"), torch.device("cuda")
DISCS = ModelConfig(encoder="tu-test_resnet", input_size=64, batch_size=4, steps=40, val_every=20)
NATIVE = precision.cpu_has_native_bf16()
TRAIN_ARGS = ["train", "--data", "d", "--out", "m.pt"]


@pytest.fixture(autouse=True)
def fresh_probes() -> Iterator[None]:
    """Each test sees the CPU probe and the once-only warning afresh."""
    precision.cpu_has_native_bf16.cache_clear()
    precision._warn_emulated_bf16.cache_clear()
    yield
    precision.cpu_has_native_bf16.cache_clear()
    precision._warn_emulated_bf16.cache_clear()


def cpu_claims(monkeypatch: pytest.MonkeyPatch, native: bool) -> None:
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: native)


def test_cuda_follows_amp_and_ignores_cpu_bf16() -> None:
    assert precision.autocast_bf16(ModelConfig(), CUDA)
    assert not precision.autocast_bf16(ModelConfig(amp=False, cpu_bf16=True), CUDA)


def test_cpu_computes_float32_unless_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    cpu_claims(monkeypatch, native=True)
    assert not precision.autocast_bf16(ModelConfig(), CPU)  # amp alone is for CUDA
    assert precision.autocast_bf16(ModelConfig(cpu_bf16=True), CPU)
    assert precision.precision_name(ModelConfig(cpu_bf16=True), CPU) == "bf16"
    assert precision.precision_name(ModelConfig(), CPU) == "float32"


def test_emulated_bf16_is_refused_with_one_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    cpu_claims(monkeypatch, native=False)
    config = ModelConfig(cpu_bf16=True)
    with caplog.at_level(logging.WARNING, logger="samdsk.model.precision"):
        assert not precision.autocast_bf16(config, CPU)
        assert not precision.autocast_bf16(config, CPU)
    warnings = [r for r in caplog.records if "no native bf16" in r.getMessage()]
    assert len(warnings) == 1


@pytest.mark.parametrize(
    ("flags", "native"),
    [("fpu sse avx512f avx512_bf16", True), ("fpu amx_tile amx_bf16", True), ("fpu avx2", False)],
)
def test_cpuinfo_flags_decide_without_torch_probes(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, flags: str, native: bool
) -> None:
    for probe in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"):
        monkeypatch.setattr(torch.cpu, probe, lambda: False, raising=False)
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\nflags\t\t: {flags}\n")
    monkeypatch.setattr(precision, "_CPUINFO", cpuinfo)
    assert precision.cpu_has_native_bf16() is native
    monkeypatch.setattr(precision, "_CPUINFO", tmp_path / "missing")
    precision.cpu_has_native_bf16.cache_clear()
    assert precision.cpu_has_native_bf16() is False


def test_setting_round_trips_must_be_a_bool_and_comes_from_the_cli() -> None:
    config = ModelConfig(cpu_bf16=True)
    assert ModelConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ConfigError, match="cpu_bf16 must be a bool"):
        ModelConfig(cpu_bf16="yes")  # type: ignore[arg-type]
    parser = build_parser()
    assert model_config(parser.parse_args([*TRAIN_ARGS, "--cpu-bf16"])).cpu_bf16
    assert not model_config(parser.parse_args(TRAIN_ARGS)).cpu_bf16


@pytest.mark.skipif(not NATIVE, reason="this CPU has no native bf16")
def test_bf16_training_learns_and_predicts_close_to_float32(
    caplog: pytest.LogCaptureFixture,
) -> None:
    config = ModelConfig.from_dict({**DISCS.to_dict(), "cpu_bf16": True})
    with caplog.at_level(logging.INFO, logger="samdsk.model.train"):
        result = train_model(disc_samples(16, 64, seed=0), config, val=disc_samples(8, 64, 1))
    assert any("bf16" in r.getMessage() for r in caplog.records)
    assert result.best_val_dice is not None and result.best_val_dice > 0.8
    test = disc_samples(4, 64, seed=2)
    images = [s.image for s in test]
    in_bf16 = predict_probabilities(result.model, images, config)
    in_float32 = predict_probabilities(result.model, images, DISCS)
    for low, full in zip(in_bf16, in_float32, strict=True):
        assert low.dtype == full.dtype == np.float32
        assert np.abs(low - full).max() < 0.1  # bf16 keeps 8 bits of mantissa
        assert ((low > 0.5) == (full > 0.5)).mean() > 0.99
