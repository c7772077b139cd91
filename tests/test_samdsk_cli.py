"""The ``samdsk`` method commands as a user runs them, on a real image."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from samdsk.cli import main
from tests.tiny_sam import save_tiny_sam

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
# Random weights whose masks pass the paper's thresholds (0.5 predicted IoU and stability):
# sharp, non-empty masks, each predicted at IoU 0.9.
PASSING_MASKS = {"logit_scale": 3000.0, "bias_std": 2.0, "predicted_iou": 0.9}


@pytest.fixture(scope="module")
def real_pair() -> tuple[Path, Path]:
    images = SHARED_DATA / "ph2" / "images"
    if not images.is_dir():
        pytest.skip(f"real data not found at {images}")
    image = sorted(images.iterdir())[0]
    return image, SHARED_DATA / "ph2" / "masks" / f"{image.stem}.png"


def _png_size(path: Path) -> tuple[int, int]:
    with Image.open(path) as image:
        assert image.format == "PNG"
        return image.size


def test_propose_writes_an_overlay_and_prints_the_count(
    real_pair: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "proposals.png"
    assert main(["propose", str(real_pair[0]), "--size", "128", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "OFFLINE" in printed
    assert "proposals" in printed and str(out) in printed
    assert _png_size(out)[0] > 100


@pytest.mark.parametrize("source", ["sam", "sam_fast"])
def test_propose_with_a_sam_checkpoint_names_the_source_and_weights(
    source: str, real_pair: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    weights = save_tiny_sam(tmp_path / "sam_vit_tiny.pth")
    out = tmp_path / "proposals.png"
    base = ["propose", str(real_pair[0]), "--size", "64", "--out", str(out), "--proposals", source]
    sam = ["--sam-checkpoint", str(weights), "--sam-model", "vit_tiny", "--proposal-device", "cpu"]
    assert main([*base, *sam, "--points-per-side", "4"]) == 0
    printed = capsys.readouterr().out
    assert str(weights) in printed and "OFFLINE" not in printed
    assert _png_size(out)[0] > 0
    assert main(base) == 1  # no checkpoint: a clear error


def test_a_sam_checkpoint_alone_means_sam_and_is_never_dropped(
    real_pair: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    weights = save_tiny_sam(tmp_path / "sam_vit_tiny.pth")
    out = tmp_path / "proposals.png"
    base = ["propose", str(real_pair[0]), "--size", "64", "--out", str(out)]
    sam = ["--sam-checkpoint", str(weights), "--sam-model", "vit_tiny", "--proposal-device", "cpu"]
    sam += ["--points-per-side", "4"]
    assert main([*base, *sam]) == 0
    printed = capsys.readouterr().out
    assert "proposals: sam vit_tiny from" in printed and "OFFLINE" not in printed
    # weights given beside the offline source, or fast-engine options beside the reference
    # generator, are an error rather than silently unused
    assert main([*base, *sam, "--proposals", "offline"]) == 1
    assert "--proposals offline uses none" in capsys.readouterr().err
    cache = tmp_path / "embeddings"
    assert main([*base, *sam, "--embedding-cache", str(cache)]) == 1
    assert "apply to --proposals sam_fast only" in capsys.readouterr().err
    assert not cache.exists()
    assert main([*base, "--points-per-side", "8"]) == 1
    assert "--proposals offline has none" in capsys.readouterr().err


def test_sam_fast_keeps_embeddings_where_asked_and_reuses_them(
    real_pair: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    weights = save_tiny_sam(tmp_path / "sam_vit_tiny.pth", **PASSING_MASKS)
    cache = tmp_path / "embeddings"
    argv = ["propose", str(real_pair[0]), "--size", "64", "--proposals", "sam_fast"]
    argv += ["--sam-checkpoint", str(weights), "--sam-model", "vit_tiny"]
    argv += ["--proposal-device", "cpu", "--sam-precision", "fp32", "--points-per-side", "4"]
    argv += ["--embedding-cache", str(cache)]
    assert main([*argv, "--out", str(tmp_path / "first.png")]) == 0
    first = capsys.readouterr().out
    stored = sorted(cache.rglob("*.npz"))
    assert len(stored) == 1 and "fp32 on cpu" in first
    modified = stored[0].stat().st_mtime_ns
    assert main([*argv, "--out", str(tmp_path / "second.png")]) == 0
    second = capsys.readouterr().out
    assert sorted(cache.rglob("*.npz")) == stored and stored[0].stat().st_mtime_ns == modified
    # the same masks from the stored embedding as from the encoder
    drawn = [line.split(" in ")[0] for line in first.splitlines() if "(sam_fast);" in line]
    assert len(drawn) == 1 and not drawn[0].startswith("0 ")
    assert drawn == [line.split(" in ")[0] for line in second.splitlines() if "(sam_fast);" in line]
    with Image.open(tmp_path / "first.png") as one, Image.open(tmp_path / "second.png") as two:
        np.testing.assert_array_equal(np.asarray(one), np.asarray(two))


def test_match_with_sam_proposals_from_a_checkpoint(
    real_pair: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    weights = save_tiny_sam(tmp_path / "sam_vit_tiny.pth", **PASSING_MASKS)
    truth = np.asarray(Image.open(real_pair[1]).convert("L"), dtype=np.float32) / 255.0
    probability = tmp_path / "probability.png"
    Image.fromarray((truth * 200 + 25).astype(np.uint8)).save(probability)
    out = tmp_path / "match.png"
    argv = ["match", str(real_pair[0]), "--probability", str(probability), "--size", "64"]
    argv += ["--knowledge", "0:1:0.0:1.0", "--out", str(out)]
    argv += ["--sam-checkpoint", str(weights), "--sam-model", "vit_tiny"]
    assert main([*argv, "--proposal-device", "cpu", "--points-per-side", "8"]) == 0
    printed = capsys.readouterr().out
    assert "proposals: sam vit_tiny from" in printed
    found = re.search(r"match score (\S+) from (\d+) proposals \(sam\)", printed)
    assert found is not None and int(found.group(2)) > 0 and 0.0 <= float(found.group(1)) <= 1.0
    assert _png_size(out)[0] > 0


def _match_score(
    image: Path, probability: Path, out: Path, capsys: pytest.CaptureFixture[str]
) -> float:
    argv = ["match", str(image), "--probability", str(probability), "--size", "128"]
    assert main([*argv, "--knowledge", "ph2", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "class 1: proposals [" in printed
    return float(printed.split("match score ")[1].split()[0])


def test_match_against_a_probability_png_prints_the_score(
    real_pair: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    image, mask = real_pair
    # The true mask, softened, stands in for a good model's map; a flat 0.1 for a model that
    # sees no lesion anywhere (no region is relevant enough to be chosen).
    truth = np.asarray(Image.open(mask).convert("L"), dtype=np.float32) / 255.0
    good, bad = tmp_path / "good.png", tmp_path / "bad.png"
    Image.fromarray((truth * 200 + 25).astype(np.uint8)).save(good)
    Image.fromarray(np.full(truth.shape, 25, dtype=np.uint8)).save(bad)
    out = tmp_path / "match.png"
    good_score = _match_score(image, good, out, capsys)
    assert _png_size(out)[0] > 100
    bad_score = _match_score(image, bad, tmp_path / "bad_match.png", capsys)
    assert bad_score == 0.0 < good_score <= 1.0


def test_match_against_a_npy_map_and_custom_knowledge(
    real_pair: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    probability = tmp_path / "probability.npy"
    np.save(probability, np.full((40, 50), 0.01, dtype=np.float32))
    out = tmp_path / "match.png"
    argv = ["match", str(real_pair[0]), "--probability", str(probability), "--size", "96"]
    assert main([*argv, "--knowledge", "0:2:0.01:0.5", "--out", str(out)]) == 0
    assert "match score" in capsys.readouterr().out
    assert out.is_file()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["nonsense"], "invalid choice"),
        (["propose"], "required"),
        (["match", "x.png", "--out", "o.png"], "one of the arguments"),
        (["experiment", "--data", "d", "--out", "o", "--labeled-fraction", "2"], "fraction"),
        (["experiment", "--data", "d", "--out", "o", "--arms", "A,E"], "arms are letters"),
        (["train", "--data", "d", "--out", "o", "--human-share", "1"], "share in [0, 1)"),
        (["match", "x.png", "--model", "m", "--knowledge", "1:2", "--out", "o"], "knowledge"),
        (["match", "x.png", "--model", "m", "--knowledge", "lungs", "--out", "o"], "preset"),
    ],
)
def test_bad_arguments_exit_2_with_a_message(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_library_errors_exit_1_with_a_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "missing.jpg"
    assert main(["propose", str(missing), "--out", str(tmp_path / "o.png")]) == 1
    assert "not found" in capsys.readouterr().err
    assert main(["train", "--data", str(tmp_path), "--out", str(tmp_path / "m.pt")]) == 1
    assert "images/ and masks/" in capsys.readouterr().err


def test_train_then_match_with_the_checkpoint(
    real_pair: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    for folder in ("images", "masks"):
        (data / folder).mkdir(parents=True)
    image, mask = real_pair
    for stem in ("a", "b", "c"):
        (data / "images" / f"{stem}.jpg").write_bytes(image.read_bytes())
        (data / "masks" / f"{stem}.png").write_bytes(mask.read_bytes())
    checkpoint = tmp_path / "model.pt"
    options = [
        "--encoder",
        "tu-mobilenetv3_small_050",
        "--size",
        "64",
        "--steps",
        "2",
        "--batch-size",
        "2",
    ]
    assert main(["train", "--data", str(data), "--out", str(checkpoint), *options]) == 0
    assert checkpoint.is_file()
    out = tmp_path / "match.png"
    argv = ["match", str(image), "--model", str(checkpoint), "--size", "96", "--out", str(out)]
    assert main(argv) == 0
    assert "match score" in capsys.readouterr().out
    assert out.is_file()


def test_experiment_command_prints_each_arm_paired_with_the_baseline(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = SHARED_DATA / "ph2"
    if not data.is_dir():
        pytest.skip(f"real data not found at {data}")
    out = tmp_path / "run"
    args = ["experiment", "--data", str(data), "--out", str(out), "--arms", "A,D"]
    args += ["--encoder", "tu-mobilenetv3_small_050", "--size", "64", "--steps", "2"]
    args += ["--batch-size", "2", "--max-images", "10", "--device", "cpu", "--train-seed", "5"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "D - A: " in printed and "95% interval" in printed
    assert (out / "report.json").is_file() and (out / "test_dice.png").is_file()
