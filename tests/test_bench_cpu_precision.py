"""bench/cpu_precision.py trains each training seed in both precisions and pairs them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from samdsk.model import precision
from tests.bench_scripts import load_bench
from tests.test_samdsk_experiment import _write_folder

TINY = ["--encoder", "tu-mobilenetv3_small_050", "--size", "64", "--steps", "2"]

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.skipif(not precision.cpu_has_native_bf16(), reason="no native bf16 on this CPU")
def test_pairs_float32_and_bf16_per_training_seed(tmp_path: Path) -> None:
    data = _write_folder(tmp_path / "data", 30)
    out = tmp_path / "report.json"
    argv = [*TINY, "--data", str(data), "--val-every", "1", "--train-seeds", "3", "4"]
    bench = load_bench("cpu_precision")
    assert bench.main([*argv, "--labeled-fraction", "0.3", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    runs = report["runs"]
    assert [(r["train_seed"], r["first"]) for r in runs] == [(3, "float32"), (4, "bf16")]
    for run in runs:
        for name in ("float32", "bf16"):
            assert run[name]["seconds_per_step"] > 0 and 0 <= run[name]["test_dice"] <= 1
        assert run["bf16_minus_float32"]["images"] == 6  # 20 % of 30 for testing
    summary = report["summary"]
    assert summary["training_speedup"] > 0 and len(summary["bf16_minus_float32_points"]) == 2


def test_stops_where_bf16_would_be_emulated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bench = load_bench("cpu_precision")
    monkeypatch.setattr(bench, "cpu_has_native_bf16", lambda: False)
    out = tmp_path / "report.json"
    assert bench.main([*TINY, "--data", str(tmp_path), "--out", str(out)]) == 1
    assert not out.exists()
