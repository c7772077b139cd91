"""The SamDSK experiment: four arms on one data folder, the same training budget per training.

A  supervised: trained on the human-labelled images only (round 0 of every arm).
B  self-training: each round adds the unlabelled images on which the model is most confident
   (confidence = mean over pixels of max(p, 1 - p)) with its own prediction at p > 0.5 as the
   label; it adds as many images as SamDSK accepted in the same round and stops when SamDSK
   does, so B and C always train on the same number of machine labels.
C  SamDSK: rounds of ``samdsk.rounds.run_round`` (proposals matched to the model's maps).
D  fully supervised: every pool image with its true mask (the ceiling).
P  SamDSK with peer maps: C whose first round matches against the mean of the maps of A's
   models under every perturbation policy (``samdsk.rounds.ensemble_maps``), so that one run
   compares C with and without them on the same A (it needs ``augment_choices``).
H  SamDSK's labels retrained with human labels held at ``retrain_human_share`` of every batch:
   C's machine labels (every round's) and the human ones, one more training after C's last
   round with ``ModelConfig.human_share`` set, so that one run compares the two retrainings on
   the same A and the same labels (with several rounds, the earlier rounds' labels still come
   from C's models).
``arms`` runs a subset: ``("A", "D")`` sizes the budget before the full comparison, since a
budget at which D is not clearly above A measures the budget, not the method.
Every training uses the same ``ModelConfig`` (steps, batch size, seed) and the same human
validation images for model selection; machine labels carry ``machine_label_weight``.
``augment_choices`` (or ``machine_augment="auto"``) trains A under each of those perturbation
policies and runs every arm under the one whose model validates best (``samdsk.augment_choice``);
``peer_maps`` then has C itself match that way (what arm P does beside C). Only the peers the
validation images do not show worse than the chosen model join (``samdsk.peers``), unless
``screen_peers`` is off (the runs before the screening existed).
Images are resized once so that the longer side is ``size`` pixels; Dice is measured there.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from samdsk.augment_choice import (
    AUTO_AUGMENT_CHOICES,
    AugmentChoice,
    check_augment_choices,
    choose_augment,
    train_choosing_augment,
)
from samdsk.dataset import Sample, Split, find_pairs, load_samples, make_split, read_split_csv
from samdsk.errors import ConfigError
from samdsk.experiment_report import (
    NOTHING_ADDED,
    Added,
    ArmRound,
    added_stats,
    confidence,
    evaluate,
    label_dice,
    make_row,
    threshold_map,
)
from samdsk.experiment_supervised import load_supervised, save_supervised, supervised_fingerprint
from samdsk.fusion import DEFAULT_FUSION_BAND
from samdsk.knowledge import ClassKnowledge
from samdsk.metrics import paired_difference
from samdsk.model import ModelConfig, TrainingSample, train_model
from samdsk.model.config import AUTO_AUGMENT
from samdsk.model.pretrain import PretrainResult, pretrain_by_restoration
from samdsk.model.pretrain_transfer import check_pretrain_transfer, start_from
from samdsk.model.train import TrainResult
from samdsk.peers import PeerScreen, screen_peers
from samdsk.proposals import ProposalCache, ProposalSource
from samdsk.rounds import RoundConfig, RoundResult, machine_labels, predict_in_batches, run_samdsk
from samdsk.selection import EmptyLabels

logger = logging.getLogger(__name__)

ARMS = {
    "A": "supervised",
    "B": "self_training",
    "C": "samdsk",
    "D": "fully_supervised",
    "P": "samdsk_peer_maps",
    "H": "samdsk_human_share",
}
SAMDSK_ARMS = ("C", "P")  # the arms that run SamDSK's rounds
# D - A below this many Dice points: the arms are too close to tell a method's gain from noise.
MIN_CEILING_GAP_POINTS = 5.0


@dataclass(frozen=True, kw_only=True)
class ExperimentConfig:
    """Settings of one experiment (``model.input_size`` is the training size; images are
    resized to longer side ``size``). test: a separate test folder instead of a split."""

    data: Path
    model: ModelConfig
    knowledge: ClassKnowledge
    labeled_fraction: float = 0.1
    rounds: int = 3
    size: int = 256
    threshold: float = 0.9
    max_new_per_round: int | None = None
    fusion_band: float = DEFAULT_FUSION_BAND
    flip_tta: bool = True
    empty_labels: EmptyLabels = "never"
    seed: int = 0
    max_images: int | None = None
    test: Path | None = None
    arms: tuple[str, ...] = ("A", "B", "C", "D")
    proposal_workers: int = 1
    augment_choices: tuple[str, ...] = ()
    peer_maps: bool = False
    screen_peers: bool = True
    warm_start: bool = False
    retrain_human_share: float = 0.5
    pretrain_steps: int = 0
    pretrain_transfer: str = "encoder"
    keep_supervised: Path | None = None
    supervised_from: Path | None = None

    def __post_init__(self) -> None:
        unknown = sorted(set(self.arms) - set(ARMS))
        if unknown or not self.arms:
            raise ConfigError(f"arms are some of {', '.join(ARMS)}; got {list(self.arms)}")
        if "A" not in self.arms:
            raise ConfigError("arm A is the baseline every other arm is compared with; include A")
        if "B" in self.arms and "C" not in self.arms:
            raise ConfigError("arm B adds as many labels as C accepted; include C to run B")
        self._check_human_share_arm()
        if self.model.num_classes != 1:
            raise ConfigError("the experiment reads one-class masks; use num_classes=1")
        if self.model.machine_augment == AUTO_AUGMENT and not self.augment_choices:
            object.__setattr__(self, "augment_choices", AUTO_AUGMENT_CHOICES)  # frozen
        check_augment_choices(self.augment_choices)
        if (self.peer_maps or "P" in self.arms) and not self.augment_choices:
            raise ConfigError(
                "peer maps come from the supervised models of the policies not chosen; "
                "use them (peer_maps, or arm P) with machine_augment='auto' (or augment_choices)"
            )
        if self.peer_maps and "P" in self.arms:
            raise ConfigError("with peer_maps C is arm P; run P beside C without peer_maps")
        if self.rounds < 1 or self.size < 1:
            raise ConfigError(f"rounds and size must be >= 1; got {self.rounds}, {self.size}")
        if self.pretrain_steps < 0:
            raise ConfigError(f"pretrain_steps must be >= 0; got {self.pretrain_steps}")
        check_pretrain_transfer(self.pretrain_transfer)
        self._check_supervised_reuse()
        self.round_config()  # checks the round settings before any training starts

    def _check_supervised_reuse(self) -> None:
        if self.supervised_from is None:
            return
        if self.keep_supervised is not None:
            raise ConfigError("supervised_from already names where A's models are kept")
        if self.pretrain_steps:
            # C's retraining would start from this run's pretraining, A's from another's
            raise ConfigError("supervised_from loads A's models; it cannot be beside pretraining")

    def _check_human_share_arm(self) -> None:
        if not 0.0 < self.retrain_human_share < 1.0:
            raise ConfigError(
                f"retrain_human_share must be in (0, 1); got {self.retrain_human_share}"
            )
        if "H" not in self.arms:
            return
        if "C" not in self.arms:
            raise ConfigError("arm H retrains the labels C accepted; include C to run H")
        if self.model.keep_empty_share:
            raise ConfigError("arm H sets human_share, which keep_empty_share cannot join")
        if self.model.human_share == self.retrain_human_share:
            raise ConfigError(
                f"C already trains with human_share {self.model.human_share}, so H would repeat "
                "it; change retrain_human_share or drop H"
            )

    def round_config(self) -> RoundConfig:
        """The settings of SamDSK's rounds (arm C)."""
        return RoundConfig(
            model=self.model,
            knowledge=(self.knowledge,),
            threshold=self.threshold,
            max_rounds=self.rounds,
            max_new_per_round=self.max_new_per_round,
            fusion_band=self.fusion_band,
            flip_tta=self.flip_tta,
            empty_labels=self.empty_labels,
            proposal_workers=self.proposal_workers,
            warm_start=self.warm_start,
        )

    def to_dict(self) -> dict[str, Any]:
        values = asdict(self)
        values["model"], values["knowledge"] = self.model.to_dict(), self.knowledge.to_dict()
        values["arms"], values["augment_choices"] = list(self.arms), list(self.augment_choices)
        return values


@dataclass(frozen=True)
class ExperimentData:
    """The loaded split: samples of each part (``split`` names their stems)."""

    split: Split
    labeled: list[Sample]
    validation: list[Sample]
    unlabeled: list[Sample]
    test: list[Sample]


@dataclass
class ArmRun:
    """One arm's rows (round 0 first) and, for SamDSK, its round results."""

    rows: list[ArmRound]
    rounds: list[RoundResult] = field(default_factory=list)


@dataclass
class ExperimentResult:
    """Everything a run produced; ``report()`` is the JSON-ready summary."""

    config: ExperimentConfig
    proposals: dict[str, str]
    data: ExperimentData
    arms: dict[str, ArmRun]
    timings: dict[str, float]
    augment_choice: AugmentChoice | None = None
    pretrained: PretrainResult | None = None
    peer_screens: list[PeerScreen] = field(default_factory=list)

    def report(self) -> dict[str, Any]:
        """Settings, proposal source, split, rows per arm, SamDSK's scores, timings."""
        model = self.config.model
        return {
            "settings": self.config.to_dict(),
            "proposals": self.proposals,
            "weights": {
                "model_encoder": model.init_weights_path
                or model.encoder_weights_path
                or "random init",
                "model_decoder": model.init_weights_path or "random init",
                "proposals": self.proposals["describe"],
            },
            "split": {**asdict(self.data.split), "test_count": len(self.data.test)},
            "arms": {
                key: {
                    "name": ARMS[key],
                    "final_test_dice": arm.rows[-1].test_dice,
                    "rounds": [asdict(row) for row in arm.rows],
                }
                for key, arm in self.arms.items()
            },
            "budget": self.budget_check(),
            "paired_with_A": self.paired_with_a(),
            "paired_with_C": self.paired_with_c(),
            "augment_choice": self.augment_choice and self.augment_choice.to_dict(),
            "peer_screen": [screen.to_dict() for screen in self.peer_screens],
            "pretraining": self.pretrained and self.pretrained.to_dict(),
            "samdsk_rounds": self._rounds_report("C"),
            **({"samdsk_peer_maps_rounds": self._rounds_report("P")} if "P" in self.arms else {}),
            "timings_seconds": self.timings,
        }

    def _rounds_report(self, arm: str) -> list[dict[str, Any]]:
        """Per round of a SamDSK arm: every match score, the accepted images and labels."""
        stems = self.data.split.unlabeled
        return [
            {
                "round": r.number,
                "match_scores": {stems[c.index]: c.score for c in r.candidates},
                "accepted": [stems[i] for i in r.accepted],
                "accepted_labels": self._accepted_labels(r),
                "seconds": r.seconds,
            }
            for r in (self.arms[arm].rounds if arm in self.arms else [])
        ]

    def budget_check(self) -> dict[str, Any] | None:
        """D - A in Dice points and whether it reaches ``MIN_CEILING_GAP_POINTS`` (None
        without both arms)."""
        if "A" not in self.arms or "D" not in self.arms:
            return None
        gap = 100.0 * (self.arms["D"].rows[0].test_dice - self.arms["A"].rows[0].test_dice)
        return {
            "ceiling_gap_points": gap,
            "required_points": MIN_CEILING_GAP_POINTS,
            "enough": gap >= MIN_CEILING_GAP_POINTS,
        }

    def paired_with_a(self) -> dict[str, Any]:
        """Each arm's final model against A's on the same test images (``paired_difference``):
        a gap inside the interval is one this test set cannot resolve."""
        return self._paired_with("A", [key for key in self.arms if key != "A"])

    def paired_with_c(self) -> dict[str, Any]:
        """The arms that vary C on the same A (H, P) against C's final model, image by image."""
        return self._paired_with("C", [key for key in ("H", "P") if key in self.arms])

    def _paired_with(self, baseline: str, keys: Sequence[str]) -> dict[str, Any]:
        """Each of ``keys``' final model against ``baseline``'s (A's one row, C's last)."""
        if baseline not in self.arms:
            return {}
        reference = self.arms[baseline].rows[-1].test_dice_per_image
        return {
            key: paired_difference(reference, self.arms[key].rows[-1].test_dice_per_image)
            for key in keys
        }

    def _accepted_labels(self, result: RoundResult) -> list[dict[str, Any]]:
        """Per accepted label, in rank order: its score, whether it (and the truth) is empty,
        and its Dice against the hidden truth, so a bad label can be traced to its image."""
        by_index = {c.index: c for c in result.candidates}
        rows: list[dict[str, Any]] = []
        for index in result.accepted:
            label = by_index[index].match.class_mask
            truth = self.data.unlabeled[index].mask
            rows.append(
                {
                    "stem": self.data.split.unlabeled[index],
                    "score": by_index[index].score,
                    "empty": not label.any(),
                    "truth_empty": not truth.any(),
                    "dice": label_dice([label], [truth])[0],
                }
            )
        return rows


def load_experiment_data(
    config: ExperimentConfig, *, show_progress_bar: bool = False
) -> ExperimentData:
    """Find, split and load the images of ``config.data`` (and ``config.test``)."""
    pairs = {pair.stem: pair for pair in find_pairs(config.data)}
    csv_path = config.data / "split.csv"
    split = make_split(
        list(pairs),
        labeled_fraction=config.labeled_fraction,
        seed=config.seed,
        split_csv=read_split_csv(csv_path) if csv_path.is_file() else None,
        separate_test=config.test is not None,
        max_images=config.max_images,
    )
    test_pairs = [pairs[s] for s in split.test]
    if config.test is not None:
        test_pairs = find_pairs(config.test)
        if config.max_images is not None:
            keep = np.random.default_rng([config.seed, 5]).permutation(len(test_pairs))
            test_pairs = [test_pairs[i] for i in sorted(keep[: config.max_images])]

    def load(stems: Sequence[str]) -> list[Sample]:
        return load_samples(
            [pairs[s] for s in stems], config.size, show_progress_bar=show_progress_bar
        )

    return ExperimentData(
        split,
        load(split.labeled),
        load(split.validation),
        load(split.unlabeled),
        load_samples(test_pairs, config.size, show_progress_bar=show_progress_bar),
    )


class _Runner:
    """What the four arms share: the data, the training and the evaluation."""

    def __init__(
        self,
        config: ExperimentConfig,
        data: ExperimentData,
        log: Callable[[str], None],
        show_progress_bar: bool,
    ) -> None:
        self.config, self.data, self.log, self.bars = config, data, log, show_progress_bar
        self.human = [TrainingSample(s.image, s.mask) for s in data.labeled]
        self.val = [TrainingSample(s.image, s.mask) for s in data.validation]
        self.test = [TrainingSample(s.image, s.mask) for s in data.test]
        self.pool_images = [s.image for s in data.unlabeled]
        self.pool_truth = [s.mask for s in data.unlabeled]
        self.weight = config.model.machine_label_weight
        self.others: dict[str, TrainResult] = {}  # A's models under the policies not chosen
        self.peer_screens: list[PeerScreen] = []

    def train(
        self,
        samples: Sequence[TrainingSample],
        what: str,
        *,
        start: TrainResult | None = None,
        model: ModelConfig | None = None,
    ) -> TrainResult:
        """Train ``samples`` for the configured steps, from ``start``'s weights when given
        (``model``: other model settings than the experiment's)."""
        model = model or self.config.model
        origin = "from the previous model's weights"
        if start is None:
            origin = "from scratch"
            if model.init_weights_path:
                origin = f"from the network weights {model.init_weights_path}"
            elif model.encoder_weights_path:
                origin = f"from the encoder weights {model.encoder_weights_path}"
        self.log(f"training {what}: {len(samples)} samples, {model.steps} steps, {origin}")
        state = None if start is None else start.model.state_dict()
        trained = train_model(
            samples, model, val=self.val, init_state=state, show_progress_bar=self.bars
        )
        if model.mix_human_share:
            self.log(
                f"{what}: the labels' size mix gave human share {trained.config.human_share:g}"
            )
        return trained

    def train_baseline(self) -> tuple[TrainResult, AugmentChoice | None]:
        """Arm A's model; with ``augment_choices``, one per policy, keeping the one of the
        best validation Dice and making its policy the one every later training uses. With
        ``supervised_from`` the models are loaded instead; ``keep_supervised`` saves them."""
        choices, config = self.config.augment_choices, self.config
        fingerprint = supervised_fingerprint(
            config.data,
            self.data.split,
            config.model,
            size=config.size,
            augment_choices=choices,
        )
        policy = config.model.machine_augment
        if config.supervised_from is not None:
            trained = load_supervised(config.supervised_from, fingerprint, config.model.device)
            self.log(
                f"A (supervised): {', '.join(trained)} loaded from {config.supervised_from}, "
                "not trained"
            )
            if choices:
                policy = choose_augment({p: r.best_val_dice for p, r in trained.items()})
                self.log(f"perturbation chosen on the stored validation Dice: {policy}")
        elif not choices:
            trained = {policy: self.train(self.human, "A (supervised)")}
        else:
            self.log(
                f"training A (supervised) under each of {list(choices)}: {len(self.human)} images"
            )
            chosen = train_choosing_augment(
                self.human,
                config.model,
                val=self.val,
                choices=choices,
                show_progress_bar=self.bars,
                log=self.log,
            )
            trained, policy = chosen.trained, chosen.choice.chosen
        if config.keep_supervised is not None:
            save_supervised(config.keep_supervised, trained, fingerprint)
            self.log(f"A's models kept in {config.keep_supervised}")
        if not choices:
            return trained[policy], None
        val_dice = {p: result.best_val_dice for p, result in trained.items()}
        test_dice = {p: evaluate(r, self.test).mean_dice for p, r in trained.items()}
        self.others = {p: r for p, r in trained.items() if p != policy}
        self.config = replace(config, model=replace(config.model, machine_augment=policy))
        return trained[policy], AugmentChoice(policy, val_dice, test_dice)

    def peers(self, base: TrainResult) -> list[TrainResult]:
        """A's models under the policies not chosen that may join ``base``'s maps: those the
        validation images do not show worse than it (all of them without ``screen_peers``)."""
        if not self.config.screen_peers:
            return list(self.others.values())
        if not self.peer_screens:
            _, self.peer_screens = screen_peers(base, self.others, self.val)
            for screen in self.peer_screens:
                self.log(screen.describe())
        return [self.others[s.policy] for s in self.peer_screens if s.kept]

    def row(
        self, arm: str, number: int, trained: TrainResult, machine: int, added: Added
    ) -> ArmRound:
        evaluation = evaluate(trained, self.test)
        self.log(
            f"{arm} round {number}: test Dice {evaluation.mean_dice:.4f}, "
            f"IoU {evaluation.mean_iou:.4f} ({added.added} added, {machine} machine labels)"
        )
        return make_row(arm, number, (len(self.human), machine), added, trained, evaluation)


def run_experiment(
    config: ExperimentConfig,
    source: ProposalSource,
    *,
    cache: ProposalCache | None = None,
    pretrain_path: Path | None = None,
    log: Callable[[str], None] = logger.info,
    show_progress_bar: bool = False,
) -> ExperimentResult:
    """Load the data, pretrain when ``config.pretrain_steps`` says so (the weights go to
    ``pretrain_path``, required then), run arms A, C, P, H, B, D (B needs C's counts; those of
    ``config.arms``) and collect the report."""
    started = time.perf_counter()
    if config.pretrain_steps and pretrain_path is None:
        raise ConfigError("pretrain_steps needs a pretrain_path to write the weights to")
    data = load_experiment_data(config, show_progress_bar=show_progress_bar)
    split = data.split
    log(
        f"split ({split.source}): {len(split.labeled)} labeled + {len(split.validation)} "
        f"validation, {len(split.unlabeled)} unlabeled, {len(data.test)} test"
    )
    timings = {"load": time.perf_counter() - started}
    pretrained = None
    if config.pretrain_steps and pretrain_path is not None:
        clock = time.perf_counter()
        pretrained = _pretrain(config, data, pretrain_path, log, show_progress_bar)
        model = start_from(config.model, pretrained.path, config.pretrain_transfer)
        config = replace(config, model=model)
        timings["pretrain"] = time.perf_counter() - clock
    runner = _Runner(config, data, log, show_progress_bar)
    arms: dict[str, ArmRun] = {}
    clock = time.perf_counter()
    base, choice = runner.train_baseline()
    config = runner.config  # the chosen perturbation, when there was a choice
    arms["A"] = ArmRun([runner.row("A", 0, base, 0, NOTHING_ADDED)])
    timings["arm_A"] = time.perf_counter() - clock
    for arm in SAMDSK_ARMS:
        if arm in config.arms:
            clock = time.perf_counter()
            peers = runner.peers(base) if arm == "P" or config.peer_maps else []
            arms[arm] = _samdsk_arm(runner, source, cache, (base, peers), arms["A"].rows[0], arm)
            timings[f"arm_{arm}"] = time.perf_counter() - clock
    if "H" in config.arms:
        clock = time.perf_counter()
        arms["H"] = _human_share_arm(runner, arms["C"], arms["A"].rows[0])
        timings["arm_H"] = time.perf_counter() - clock
    if "B" in config.arms:
        clock = time.perf_counter()
        counts = [row.added for row in arms["C"].rows[1:]]
        arms["B"] = _self_training_arm(runner, base, arms["A"].rows[0], counts)
        timings["arm_B"] = time.perf_counter() - clock
    if "D" in config.arms:
        clock = time.perf_counter()
        full = runner.human + [TrainingSample(s.image, s.mask) for s in data.unlabeled]
        full_model = runner.train(full, "D (fully supervised)")
        arms["D"] = ArmRun([runner.row("D", 0, full_model, 0, NOTHING_ADDED)])
        timings["arm_D"] = time.perf_counter() - clock
    timings["total"] = time.perf_counter() - started
    ordered = dict(sorted(arms.items()))
    result = ExperimentResult(
        config, source_info(source), data, ordered, timings, choice, pretrained
    )
    result.peer_screens = runner.peer_screens
    budget = result.budget_check()
    if budget is not None:
        gap = f"D - A is {budget['ceiling_gap_points']:.1f} Dice points"
        log(
            f"{gap}: the budget separates the arms"
            if budget["enough"]
            else f"{gap}, under {MIN_CEILING_GAP_POINTS:g}: the comparison measures the budget "
            "or a data set near its ceiling, not the method; raise --steps (or --size) and "
            "compare again, or lower --labeled-fraction where A already reaches D's level"
        )
    return result


def _pretrain(
    config: ExperimentConfig,
    data: ExperimentData,
    path: Path,
    log: Callable[[str], None],
    show_progress_bar: bool,
) -> PretrainResult:
    """Restoration pretraining on every image but the test images (labelled, validation and
    pool alike: their masks are not used), so no arm's weights have seen a test image."""
    images = [s.image for s in (*data.labeled, *data.validation, *data.unlabeled)]
    log(f"pretraining by restoration: {len(images)} images, {config.pretrain_steps} steps")
    result = pretrain_by_restoration(
        images,
        config.model,
        path,
        steps=config.pretrain_steps,
        show_progress_bar=show_progress_bar,
    )
    log(
        f"pretrained in {result.seconds:.0f} s (restoration loss {result.first_loss:.4f} -> "
        f"{result.final_loss:.4f}); every arm starts from its {config.pretrain_transfer} ({path})"
    )
    return result


def source_info(source: ProposalSource) -> dict[str, str]:
    """Which proposal source (and weights) a run used, for reports."""
    return {"name": source.name, "settings": source.settings_key(), "describe": source.describe()}


def _samdsk_arm(
    runner: _Runner,
    source: ProposalSource,
    cache: ProposalCache | None,
    models: tuple[TrainResult, Sequence[TrainResult]],
    first: ArmRound,
    arm: str = "C",
) -> ArmRun:
    """Arm C (or P): ``run_samdsk`` from the supervised model (``models``: it and the peers
    whose maps round 1 averages with its own), then one row per round."""
    config = runner.config
    base, peers = models
    results = run_samdsk(
        runner.human,
        runner.pool_images,
        source,
        cache,
        config.round_config(),
        val=runner.val,
        first_model=base,
        first_peers=peers,
        on_round=lambda r: runner.log(f"{arm} round {r.number}: {len(r.accepted)} accepted"),
        show_progress_bar=runner.bars,
    )
    rows, labels = [replace(first, arm=arm)], list(runner.human)
    for number, result in enumerate(results, start=1):
        cands = result.candidates
        taken = set(result.accepted)
        chosen = [rank for rank, c in enumerate(cands) if c.index in taken]
        own = predict_in_batches(result.trained, [runner.pool_images[i] for i in result.accepted])
        added = added_stats(
            [c.score for c in cands],
            [c.match.class_mask for c in cands],
            [runner.pool_truth[c.index] for c in cands],
            chosen,
            [threshold_map(p) for p in own],
        )
        if not result.accepted:
            rows.append(_stopped(rows[-1], number, added))
            break
        labels += machine_labels(result, runner.pool_images, runner.weight)
        last = number == len(results)
        # warm start: the model that made this round's maps goes on learning with its labels
        start = result.trained if config.warm_start else None
        trained = (
            runner.train(labels, f"{arm} after round {number}", start=start)
            if last
            else results[number].trained
        )
        rows.append(runner.row(arm, number, trained, len(labels) - len(runner.human), added))
    return ArmRun(rows, rounds=results)


def _human_share_arm(runner: _Runner, samdsk: ArmRun, first: ArmRound) -> ArmRun:
    """Arm H: C's labels retrained once with ``retrain_human_share`` of every batch human; its
    row after A's carries the number and the added-label figures of C's last round that added
    labels, and its own model's test figures."""
    config = runner.config
    taking = [result for result in samdsk.rounds if result.accepted]
    if not taking:
        return ArmRun([replace(first, arm="H")])  # C accepted nothing: H is A
    labels = list(runner.human)
    for result in taking:
        labels += machine_labels(result, runner.pool_images, runner.weight)
    model = replace(config.model, human_share=config.retrain_human_share, mix_human_share=0.0)
    start = taking[-1].trained if config.warm_start else None  # as C's last training
    trained = runner.train(
        labels, f"H (C's labels, human share {model.human_share:g})", start=start, model=model
    )
    last = next(row for row in reversed(samdsk.rows) if row.round == len(taking))
    added = Added(
        last.added,
        last.added_label_dice,
        last.added_model_dice,
        last.added_mean_score,
        last.score_dice_spearman,
        last.scored,
    )
    machine = len(labels) - len(runner.human)
    return ArmRun([replace(first, arm="H"), runner.row("H", last.round, trained, machine, added)])


def _self_training_arm(
    runner: _Runner, base: TrainResult, first: ArmRound, counts: Sequence[int]
) -> ArmRun:
    """Arm B: per round add the ``counts[r]`` most confident images with the model's own
    thresholded prediction as label, then retrain; stops where C stopped."""
    rows, labels, trained = [replace(first, arm="B")], list(runner.human), base
    remaining = list(range(len(runner.pool_images)))
    for number, count in enumerate(counts, start=1):
        if count == 0 or not remaining:
            break
        maps = predict_in_batches(trained, [runner.pool_images[i] for i in remaining])
        scores = [confidence(p) for p in maps]
        masks = [threshold_map(p) for p in maps]
        chosen = [int(i) for i in np.argsort(-np.asarray(scores), kind="stable")[:count]]
        truths = [runner.pool_truth[i] for i in remaining]
        added = added_stats(scores, masks, truths, chosen, [masks[i] for i in chosen])
        labels += [
            TrainingSample(runner.pool_images[remaining[i]], masks[i], runner.weight, machine=True)
            for i in chosen
        ]
        picked = {remaining[i] for i in chosen}
        remaining = [i for i in remaining if i not in picked]
        start = trained if runner.config.warm_start else None  # as C's rounds do
        trained = runner.train(labels, f"B after round {number}", start=start)
        rows.append(runner.row("B", number, trained, len(labels) - len(runner.human), added))
    return ArmRun(rows)


def _stopped(previous: ArmRound, number: int, added: Added) -> ArmRound:
    """A round that added nothing: the model and its scores stay those of the previous one."""
    return replace(
        previous,
        round=number,
        added=0,
        added_label_dice=None,
        added_model_dice=None,
        added_mean_score=None,
        score_dice_spearman=added.score_dice_spearman,
        scored=added.scored,
        train_seconds=0.0,
        stopped=True,
    )
