"""bench/proposals.py runs the reference generator and the fast engine side by side on the
tiny model and writes their rates and agreement: the CPU path of the GPU benchmark."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.bench_scripts import load_bench

ROOT = Path(__file__).resolve().parents[1]
KVASIR = ROOT.parent / "shared" / "data" / "kvasir_seg" / "images"


def test_times_both_and_finds_them_in_agreement(tmp_path: Path) -> None:
    if not KVASIR.is_dir():
        pytest.skip(f"real data not found at {KVASIR}")
    out = tmp_path / "proposals.json"
    argv = ["--models", "vit_tiny", "--size", "64", "--images", "2", "--device", "cpu"]
    argv += ["--points-per-side", "4", "--agreement-points", "4", "--agreement-images", "1"]
    assert load_bench("proposals").main([*argv, "--logit-scale", "30", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["device"] == "cpu" and report["images"] == 2
    (result,) = report["results"]
    assert result["model"] == "vit_tiny" and result["engine_precision"] == "fp32"
    assert result["reference_images_per_s"] > 0 and result["engine_images_per_s"] > 0
    assert result["reference_peak_gpu_mib"] is None  # no GPU memory to report on the CPU
    prefilter = result["prefilter"]
    # one agreement image, 4 x 4 prompts, 3 masks per prompt
    assert prefilter["pass"] and prefilter["masks"] == 4 * 4 * 3
    assert prefilter["predicted_iou"]["abs_diff_max"] <= 1e-5
    permissive = result["permissive_agreement"]
    assert permissive["pass"] and permissive["reference_masks"] > 0
    assert permissive["engine_masks"] == permissive["reference_masks"]
    assert permissive["best_iou_median"] >= 0.98
    every = result["every_prompt_timing"]
    assert every["pred_iou_thresh"] == 0.0 and every["engine_images_per_s"] > 0
    stages = result["stages_ms_per_image"]
    assert set(stages) == {
        "reference_encoder_ms",
        "reference_decoder_with_upscaling_ms",
        "engine_encoder_ms",
        "engine_decoder_transformer_ms",
        "engine_mask_logits_every_prompt_ms",
    }
    assert all(milliseconds > 0 for milliseconds in stages.values())
    loaded = result["loaded_timing"]  # masks pass the paper's thresholds: compared there too
    assert loaded["engine_images_per_s"] > 0 and loaded["agreement"]["reference_masks"] > 0
    assert loaded["agreement"]["pass"]
    cost = result["decoder_cost"]
    assert cost["engine"]["dtype"] == "float32"
    # the restructured decoder does less of both, whatever the device
    for key in ("gflop_per_prompt", "mb_moved_per_prompt"):
        assert 0 < cost["engine"][key] < 0.8 * cost["reference_fp32"][key]
