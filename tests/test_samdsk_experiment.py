"""Experiment splits and an end-to-end run of the four arms on real PH2 images."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

import samdsk.experiment
import samdsk.model
import samdsk.rounds
from samdsk.cli import build_parser, model_config
from samdsk.dataset import DatasetError, find_pairs, load_samples, make_split, read_split_csv
from samdsk.errors import ConfigError
from samdsk.experiment import ExperimentConfig, load_experiment_data, run_experiment
from samdsk.experiment_outputs import write_outputs
from samdsk.experiment_report import json_ready
from samdsk.knowledge import PRESETS
from samdsk.model import ModelConfig, TrainingSample
from samdsk.model.train import TrainResult
from samdsk.proposals import build_proposal_source

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
TINY_MODEL = ModelConfig(
    encoder="tu-mobilenetv3_small_050",
    input_size=64,
    steps=2,
    batch_size=2,
    val_every=2,
    device="cpu",
    cpu_threads=1,  # outcomes must not follow the load of whatever else runs beside the tests
)


def _tiny_experiment(data: Path, **settings: Any) -> ExperimentConfig:
    """An experiment of the tiny model (unless ``model`` is given) on PH2's knowledge (one
    lesion per image)."""
    model = settings.pop("model", TINY_MODEL)
    return ExperimentConfig(data=data, model=model, knowledge=PRESETS["ph2"], **settings)


def _one_round_experiment(tmp_path: Path, **settings: Any) -> ExperimentConfig:
    """One round on 12 synthetic images (40 % labelled), at most two machine labels."""
    return _tiny_experiment(
        _write_folder(tmp_path / "data", 12),
        labeled_fraction=0.4,
        rounds=1,
        size=48,
        max_new_per_round=2,
        **settings,
    )


@dataclass
class Training:
    """One training of an experiment: its samples, settings, start weights and model."""

    samples: list[TrainingSample]
    model: ModelConfig
    start: dict[str, torch.Tensor] | None
    result: TrainResult


def record_trainings(monkeypatch: Any) -> list[Training]:
    """Record every training the experiment runs from now on, in order."""
    trainings: list[Training] = []
    real = samdsk.experiment.train_model

    def recording(samples: Any, model: ModelConfig, **kwargs: Any) -> TrainResult:
        state = kwargs.get("init_state")
        start = None if state is None else {k: v.clone() for k, v in state.items()}
        result = real(samples, model, **kwargs)
        trainings.append(Training(list(samples), model, start, result))
        return result

    monkeypatch.setattr(samdsk.experiment, "train_model", recording)
    return trainings


def _write_folder(root: Path, count: int, split: dict[str, str] | None = None) -> Path:
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    rng = np.random.default_rng(0)
    for i in range(count):
        image = rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)
        mask = np.zeros((40, 48), dtype=np.uint8)
        mask[10:20, 12 : 20 + i % 5] = 255
        Image.fromarray(image).save(root / "images" / f"img{i:02d}.jpg")
        Image.fromarray(mask).save(root / "masks" / f"img{i:02d}.png")
    if split is not None:
        with (root / "split.csv").open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["name", "split"])
            writer.writerows(split.items())
    return root


def test_split_honours_split_csv(tmp_path: Path) -> None:
    split_map = {
        f"img{i:02d}": "train" if i < 14 else ("val" if i < 17 else "test") for i in range(20)
    }
    folder = _write_folder(tmp_path / "data", 20, split_map)
    stems = [pair.stem for pair in find_pairs(folder)]
    split = make_split(
        stems, labeled_fraction=0.3, seed=3, split_csv=read_split_csv(folder / "split.csv")
    )
    assert split.source == "split.csv"
    assert split.test == tuple(f"img{i:02d}" for i in range(14, 20))
    assert split.pool == tuple(f"img{i:02d}" for i in range(14))
    parts = [set(split.labeled), set(split.validation), set(split.unlabeled)]
    assert sum(len(p) for p in parts) == 14 and len(set.union(*parts)) == 14
    assert len(split.labeled) + len(split.validation) == round(0.3 * 14)
    assert len(split.validation) == 1


def test_split_is_reproducible_and_depends_on_the_seed(tmp_path: Path) -> None:
    stems = [pair.stem for pair in find_pairs(_write_folder(tmp_path / "data", 20))]
    first = make_split(stems, labeled_fraction=0.25, seed=7)
    assert make_split(list(reversed(stems)), labeled_fraction=0.25, seed=7) == first
    assert make_split(stems, labeled_fraction=0.25, seed=8) != first
    assert first.source == "seeded 4 test images" and len(first.test) == 4
    assert len(first.labeled) + len(first.validation) == 4


def test_max_images_subsamples_before_splitting() -> None:
    stems = [f"s{i}" for i in range(100)]
    split = make_split(stems, labeled_fraction=0.2, seed=0, max_images=30)
    assert len(split.pool) + len(split.test) == 30
    assert set(split.pool) | set(split.test) <= set(stems)


def test_bad_split_inputs_raise_dataset_errors(tmp_path: Path) -> None:
    bad = tmp_path / "split.csv"
    bad.write_text("image,part\na,train\n")
    with pytest.raises(DatasetError, match="name,split"):
        read_split_csv(bad)
    bad.write_text("name,split\na,holdout\n")
    with pytest.raises(DatasetError, match="unknown split 'holdout'"):
        read_split_csv(bad)
    with pytest.raises(DatasetError, match="images/ and masks/"):
        find_pairs(tmp_path)
    with pytest.raises(DatasetError, match="labeled fraction"):
        make_split(["a", "b", "c"], labeled_fraction=0.0)


def test_load_samples_keeps_the_aspect_ratio(tmp_path: Path) -> None:
    folder = _write_folder(tmp_path / "data", 2)
    samples = load_samples(find_pairs(folder), size=24)
    assert samples[0].image.shape == (20, 24, 3) and samples[0].image.dtype == np.uint8
    assert samples[0].mask.shape == (20, 24) and samples[0].mask.dtype == np.bool_
    assert samples[0].mask.any()


@pytest.mark.slow
def test_experiment_on_real_images_writes_report_csvs_and_plots(tmp_path: Path) -> None:
    data = SHARED_DATA / "ph2"
    if not data.is_dir():
        pytest.skip(f"real data not found at {data}")
    config = _tiny_experiment(
        data,
        labeled_fraction=0.3,
        rounds=1,
        size=64,
        threshold=0.0,  # accept every candidate, so that every arm adds and retrains
        max_new_per_round=3,
        max_images=12,
    )
    result = run_experiment(config, build_proposal_source("offline"))
    report = write_outputs(result, tmp_path / "out")
    saved = json.loads((tmp_path / "out" / "report.json").read_text())
    assert saved == json_ready(report)
    assert sorted(saved["arms"]) == ["A", "B", "C", "D"]
    samdsk_rows = saved["arms"]["C"]["rounds"]
    assert [row["round"] for row in samdsk_rows] == [0, 1]
    assert samdsk_rows[1]["added"] == 3 and samdsk_rows[1]["machine_labels"] == 3
    assert saved["arms"]["B"]["rounds"][1]["added"] == 3
    assert 0.0 <= samdsk_rows[1]["added_label_dice"] <= 1.0
    labels = saved["samdsk_rounds"][0]["accepted_labels"]
    assert [label["stem"] for label in labels] == saved["samdsk_rounds"][0]["accepted"]
    assert np.mean([label["dice"] for label in labels]) == pytest.approx(
        samdsk_rows[1]["added_label_dice"]
    )
    assert not any(label["truth_empty"] for label in labels)  # PH2: one lesion per image
    assert saved["proposals"]["name"]
    assert saved["settings"]["model"]["input_size"] == 64
    tests = saved["split"]["test_count"]
    for row in (r for arm in saved["arms"].values() for r in arm["rounds"]):
        assert 0.0 <= row["test_dice"] <= 1.0 and 0.0 <= row["test_iou"] <= 1.0
        assert len(row["test_dice_per_image"]) == tests
        assert np.mean(row["test_dice_per_image"]) == pytest.approx(row["test_dice"])
    assert sorted(saved["paired_with_A"]) == ["B", "C", "D"]
    for key, paired in saved["paired_with_A"].items():
        final = saved["arms"][key]["final_test_dice"] - saved["arms"]["A"]["final_test_dice"]
        assert paired["mean_points"] == pytest.approx(100 * final)
        assert paired["better"] + paired["worse"] + paired["tied"] == paired["images"] == tests
    for name in ("supervised", "self_training", "samdsk", "fully_supervised"):
        with (tmp_path / "out" / f"rounds_{name}.csv").open() as handle:
            rows = list(csv.DictReader(handle))
        assert len(rows) >= 1 and "test_dice_per_image" not in rows[0]
    for plot in ("test_dice.png", "match_scores.png", "accepted_labels.png"):
        with Image.open(tmp_path / "out" / plot) as image:
            assert image.size[0] > 100
    with Image.open(tmp_path / "out" / "worst_accepted_labels.png") as image:
        assert image.size[0] > 100
    written = sorted((tmp_path / "out" / "machine_labels" / "round_1").iterdir())
    assert [path.stem for path in written] == sorted(saved["samdsk_rounds"][0]["accepted"])
    accepted = {c.index: c for c in result.arms["C"].rounds[0].candidates}
    for path in written:
        index = result.data.split.unlabeled.index(path.stem)
        expected = accepted[index].match.class_mask > 0
        with Image.open(path) as image:
            assert image.mode == "L"
            pixels = np.asarray(image)
        assert set(np.unique(pixels)) <= {0, 255}
        assert np.array_equal(pixels == 255, expected)


@pytest.mark.slow
def test_experiment_stops_both_machine_label_arms_when_samdsk_accepts_nothing(
    tmp_path: Path,
) -> None:
    data = SHARED_DATA / "ph2"
    if not data.is_dir():
        pytest.skip(f"real data not found at {data}")
    config = _tiny_experiment(
        data,
        labeled_fraction=0.4,
        rounds=3,
        size=64,
        threshold=1.0,  # no tiny model's map matches a union of proposals perfectly
        max_images=8,
    )
    report = write_outputs(run_experiment(config, build_proposal_source("offline")), tmp_path)
    samdsk_rows = report["arms"]["C"]["rounds"]
    assert [(row["round"], row["added"], row["stopped"]) for row in samdsk_rows] == [
        (0, 0, False),
        (1, 0, True),
    ]
    assert samdsk_rows[1]["test_dice"] == samdsk_rows[0]["test_dice"]
    assert samdsk_rows[1]["scored"] == len(report["split"]["unlabeled"])
    assert len(report["arms"]["B"]["rounds"]) == 1
    assert [r["accepted"] for r in report["samdsk_rounds"]] == [[]]
    assert (tmp_path / "accepted_labels.png").is_file()


@pytest.mark.parametrize(
    ("arms", "message"),
    [(("D",), "include A"), (("A", "B", "D"), "include C"), (("A", "E"), "some of")],
)
def test_an_arm_subset_must_keep_the_baseline_and_what_b_needs(
    arms: tuple[str, ...], message: str, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError, match=message):
        _tiny_experiment(tmp_path, arms=arms)


def test_the_cli_reads_arms_in_any_case_and_order() -> None:
    args = build_parser().parse_args(["experiment", "--data", "d", "--out", "o", "--arms", "d, a"])
    assert args.arms == ("A", "D")
    default = build_parser().parse_args(["experiment", "--data", "d", "--out", "o"])
    assert default.arms == ("A", "B", "C", "D")


def test_the_training_seed_follows_the_split_seed_unless_given() -> None:
    """--train-seed moves the training alone: the split still comes from --seed."""
    parser = build_parser()
    same = parser.parse_args(["experiment", "--data", "d", "--out", "o", "--seed", "3"])
    assert (same.seed, model_config(same).seed) == (3, 3)
    apart = parser.parse_args(
        ["experiment", "--data", "d", "--out", "o", "--seed", "3", "--train-seed", "8"]
    )
    assert (apart.seed, model_config(apart).seed) == (3, 8)
    trained = parser.parse_args(["train", "--data", "d", "--out", "o", "--seed", "4"])
    assert model_config(trained).seed == 4


def test_the_cli_pins_the_cpu_thread_count_only_when_asked(
    capsys: pytest.CaptureFixture[str],
) -> None:
    parser = build_parser()
    for command, source in (
        ("experiment", "--data"),
        ("train", "--data"),
        ("pretrain", "--images"),
    ):
        base = [command, source, "d", "--out", "o"]
        assert model_config(parser.parse_args(base)).cpu_threads is None
        assert model_config(parser.parse_args([*base, "--cpu-threads", "1"])).cpu_threads == 1
    with pytest.raises(SystemExit):
        parser.parse_args(["train", "--data", "d", "--out", "o", "--cpu-threads", "0"])
    assert "positive integer" in capsys.readouterr().err


def test_sizing_the_budget_runs_only_a_and_d_and_reports_their_gap(tmp_path: Path) -> None:
    data = _write_folder(tmp_path / "data", 10)
    config = _tiny_experiment(
        data,
        labeled_fraction=0.3,
        rounds=1,
        size=48,
        arms=("A", "D"),
    )
    lines: list[str] = []
    result = run_experiment(config, build_proposal_source("offline"), log=lines.append)
    report = write_outputs(result, tmp_path / "out")
    assert sorted(report["arms"]) == ["A", "D"] and report["samdsk_rounds"] == []
    assert sorted(report["timings_seconds"]) == ["arm_A", "arm_D", "load", "total"]
    gap = 100 * (report["arms"]["D"]["final_test_dice"] - report["arms"]["A"]["final_test_dice"])
    assert report["budget"] == {
        "ceiling_gap_points": pytest.approx(gap),
        "required_points": 5.0,
        "enough": gap >= 5.0,
    }
    verdicts = [line for line in lines if line.startswith("D - A is")]
    assert len(verdicts) == 1
    assert ("measures the budget" in verdicts[0]) == (gap < 5.0)
    assert report["settings"]["arms"] == ["A", "D"]
    assert (tmp_path / "out" / "test_dice.png").is_file()
    assert not (tmp_path / "out" / "match_scores.png").exists()


def test_later_rounds_train_on_every_earlier_rounds_labels_and_b_keeps_pace(
    tmp_path: Path, monkeypatch: Any
) -> None:
    """Two rounds that each accept two labels: round 2 matches with round 1's model, trains
    on both rounds' labels, and B adds as many of its own per round."""
    config = _tiny_experiment(
        _write_folder(tmp_path / "data", 12),
        labeled_fraction=0.4,
        rounds=2,
        size=48,
        threshold=0.0,  # every constructed annotation passes; max_new_per_round bounds them
        max_new_per_round=2,
        arms=("A", "B", "C"),
    )
    trainings = record_trainings(monkeypatch)
    in_rounds: list[int] = []  # machine labels of each training inside samdsk.rounds (C's)
    real = samdsk.model.train_model

    def recording(samples: Any, model: ModelConfig, **kwargs: Any) -> TrainResult:
        in_rounds.append(sum(sample.machine for sample in samples))
        return real(samples, model, **kwargs)

    monkeypatch.setattr(samdsk.rounds, "train_model", recording)
    report = write_outputs(run_experiment(config, build_proposal_source("offline")), tmp_path)
    rows = {arm: report["arms"][arm]["rounds"] for arm in ("A", "B", "C")}
    counts = {
        arm: [(r["round"], r["human_labels"], r["machine_labels"], r["added"]) for r in arm_rows]
        for arm, arm_rows in rows.items()
    }
    assert counts["C"] == [(0, 3, 0, 0), (1, 3, 2, 2), (2, 3, 4, 2)]
    assert counts["B"] == counts["C"]
    assert counts["A"] == [(0, 3, 0, 0)]
    accepted = [set(r["accepted"]) for r in report["samdsk_rounds"]]
    assert [len(a) for a in accepted] == [2, 2] and not accepted[0] & accepted[1]
    assert accepted[0] | accepted[1] <= set(report["split"]["unlabeled"])
    # round 2 scored only what round 1 left, with round 1's model
    assert rows["C"][2]["scored"] == len(report["split"]["unlabeled"]) - 2
    # C's round-1 model is trained inside the rounds (its maps choose round 2's labels); in
    # the experiment: A, C after round 2, then B after rounds 1 and 2
    assert in_rounds == [2]
    assert [sum(s.machine for s in t.samples) for t in trainings] == [0, 4, 2, 4]
    with (tmp_path / "rounds_samdsk.csv").open() as handle:
        assert [row["round"] for row in csv.DictReader(handle)] == ["0", "1", "2"]


def test_a_separate_test_folder_replaces_the_split_and_split_csv(tmp_path: Path) -> None:
    """--test DIR: every image of --data forms the pool (its split.csv, test rows included,
    is not read) and the test images are DIR's."""
    split_map = {f"img{i:02d}": "train" if i < 6 else "test" for i in range(10)}
    data = _write_folder(tmp_path / "data", 10, split_map)
    test = _write_folder(tmp_path / "test", 3)
    args = build_parser().parse_args(
        ["experiment", "--data", str(data), "--test", str(test), "--out", "o"]
    )
    assert args.test == test
    loaded = load_experiment_data(_tiny_experiment(data, test=test, labeled_fraction=0.3, size=24))
    assert loaded.split.source == "separate test folder" and loaded.split.test == ()
    assert loaded.split.pool == tuple(f"img{i:02d}" for i in range(10))
    assert len(loaded.test) == 3 and loaded.test[0].image.shape == (20, 24, 3)
    empty = _write_folder(tmp_path / "empty", 0)
    with pytest.raises(DatasetError):
        load_experiment_data(_tiny_experiment(data, test=empty, labeled_fraction=0.3, size=24))
