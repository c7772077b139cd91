"""bench/matching.py times both stages and writes one row per configuration."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.bench_scripts import load_bench

ROOT = Path(__file__).resolve().parents[1]
KVASIR = ROOT.parent / "shared" / "data" / "kvasir_seg" / "images"


def test_reports_proposal_and_matching_rates(tmp_path: Path) -> None:
    if not KVASIR.is_dir():
        pytest.skip(f"real data not found at {KVASIR}")
    out = tmp_path / "rows.json"
    argv = ["--sizes", "64", "--images", "2", "--workers", "1", "2", "--proposals", "8"]
    assert load_bench("matching").main([*argv, "--out", str(out)]) == 0
    rows = json.loads(out.read_text())["rows"]
    assert [(r["stage"], r.get("workers")) for r in rows] == [
        ("proposals", 1),
        ("proposals", 2),
        ("matching", None),
    ]
    assert all(r["images_per_second"] > 0 and r["size"] == 64 for r in rows)
    assert rows[0]["proposals"] == rows[1]["proposals"] > 0


def test_refuses_a_missing_image_folder(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as stopped:
        load_bench("matching").main(["--stages", "proposals", "--data", str(tmp_path / "none")])
    assert stopped.value.code == 2
