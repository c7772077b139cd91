"""SamDSK rounds: train, predict, propose, match, rank, accept.

One round (``run_round``): (1) train a model on the labelled samples; (2) predict probability
maps for every unlabelled image; (3) get region proposals per image (cached: a proposal depends
only on the image and the source, so later rounds reuse it); (4) match the proposals against
the probability maps under the image-level knowledge of each class; (5) rank the constructed
annotations by match score and accept those scoring at least ``threshold`` as machine labels.
``run_samdsk`` repeats rounds, adding the accepted machine labels (loss weight
``ModelConfig.machine_label_weight``) to the labelled set, until a round accepts nothing, the
pool is empty, or ``max_rounds`` rounds ran. In the service a person reviews the candidates
instead of accepting them automatically; ``run_round`` serves both.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import torch
from tqdm import tqdm

from samdsk.errors import ConfigError
from samdsk.fusion import DEFAULT_FUSION_BAND, fuse_with_model
from samdsk.knowledge import ClassKnowledge
from samdsk.matching import DEFAULT_MIN_RELEVANCE, MultiClassMatch, match_classes, rank_matches
from samdsk.model import ModelConfig, TrainingSample, predict_probabilities, train_model
from samdsk.model.infer import model_device
from samdsk.model.threads import cpu_threads_for
from samdsk.model.train import TrainResult
from samdsk.proposals import ProposalCache, ProposalSource
from samdsk.proposals.parallel import propose_many
from samdsk.selection import EMPTY_LABEL_POLICIES, EmptyLabels, LabelCounts, select
from samdsk.types import Proposals

Progress = Callable[[str, float], None]
STAGES = ("train", "predict", "propose", "match")


@dataclass(frozen=True, kw_only=True)
class RoundConfig:
    """Settings of SamDSK rounds.

    model: how each round's model is built and trained (the same budget every round).
    knowledge: one ClassKnowledge per class (``len == model.num_classes``).
    threshold: annotations with match score >= threshold become machine labels, in [0, 1].
    max_rounds: at most this many rounds (>= 1).
    max_new_per_round: accept at most this many (the best-ranked) per round; None = no cap.
    warm_start: start each round's training from the previous round's weights.
    max_candidates, max_pair_iou, min_relevance: options of ``samdsk.matching.match_classes``.
    fusion_band: the constructed annotation's boundary follows the model where its probability
        is outside 0.5 +- fusion_band, the proposals inside (``samdsk.fusion``; 0.5 = the
        proposals' union alone, as in the paper).
    flip_tta: match against probability maps averaged over mirror images (3x prediction
        cost; the match score ranks images better).
    empty_labels: which empty annotations may become labels (``samdsk.selection``):
        "never" (the default): none, a reviewer decides them; "bounded": those that do not
        make the class's absence more common among the labels than among those held before
        the round; "any": all that reach the threshold.
    proposal_workers: processes that compute CPU (offline) proposals side by side
        (``samdsk.proposals.parallel``); SAM sources always use one.
    """

    model: ModelConfig
    knowledge: tuple[ClassKnowledge, ...]
    threshold: float = 0.9
    max_rounds: int = 3
    max_new_per_round: int | None = None
    warm_start: bool = False
    max_candidates: int = 20
    max_pair_iou: float = 0.1
    min_relevance: float = DEFAULT_MIN_RELEVANCE
    fusion_band: float = DEFAULT_FUSION_BAND
    flip_tta: bool = True
    empty_labels: EmptyLabels = "never"
    proposal_workers: int = 1

    def __post_init__(self) -> None:
        if not self.knowledge or len(self.knowledge) != self.model.num_classes:
            raise ConfigError(
                f"need one ClassKnowledge per class: {self.model.num_classes} classes but "
                f"{len(self.knowledge)} knowledge entries"
            )
        if not 0.0 <= self.threshold <= 1.0:
            raise ConfigError(f"threshold must be in [0, 1]; got {self.threshold}")
        if self.empty_labels not in EMPTY_LABEL_POLICIES:
            raise ConfigError(
                f"empty_labels must be one of {EMPTY_LABEL_POLICIES}; got {self.empty_labels!r}"
            )
        if self.max_rounds < 1:
            raise ConfigError(f"max_rounds must be >= 1; got {self.max_rounds}")
        if self.proposal_workers < 1:
            raise ConfigError(f"proposal_workers must be >= 1; got {self.proposal_workers}")
        if not 0.0 <= self.fusion_band <= 0.5:
            raise ConfigError(f"fusion_band must be in [0, 0.5]; got {self.fusion_band}")
        if self.max_new_per_round is not None and self.max_new_per_round < 1:
            raise ConfigError(
                f"max_new_per_round must be >= 1 or None; got {self.max_new_per_round}"
            )


@dataclass(frozen=True)
class Candidate:
    """A constructed annotation of one unlabelled image.

    index: position of the image in the unlabelled pool given to ``run_round``
        (``run_samdsk``: in the pool given to it).
    match: the annotation (``match.class_mask``: H x W uint8, 0 = background).
    score: the match score in [0, 1]; rank: 0 = best.
    """

    index: int
    match: MultiClassMatch
    score: float
    rank: int


@dataclass
class RoundResult:
    """One round: its model, the ranked candidates and the accepted ones.

    accepted: candidate indices (pool positions, as ``Candidate.index``) in rank order.
    seconds: wall time per stage (``STAGES``; "train" is 0 for a given model).
    """

    number: int
    trained: TrainResult
    candidates: list[Candidate]
    accepted: list[int]
    seconds: dict[str, float] = field(default_factory=dict)

    def candidate(self, index: int) -> Candidate:
        """The candidate of pool position ``index``."""
        for found in self.candidates:
            if found.index == index:
                return found
        raise KeyError(index)


def run_round(
    labeled: Sequence[TrainingSample],
    unlabeled_images: Sequence[np.ndarray],
    source: ProposalSource,
    cache: ProposalCache | None,
    config: RoundConfig,
    *,
    number: int = 1,
    val: Sequence[TrainingSample] = (),
    init_state: dict[str, torch.Tensor] | None = None,
    trained: TrainResult | None = None,
    peers: Sequence[TrainResult] = (),
    progress: Progress | None = None,
    show_progress_bar: bool = False,
) -> RoundResult:
    """One SamDSK round (see the module docstring).

    labeled: training samples (human labels of weight 1, machine labels of their own weight);
    val: held-out human labels for model selection. unlabeled_images: H x W x 3 uint8 RGB.
    trained: a model already trained on ``labeled`` (skips training, e.g. the supervised
    baseline). peers: other models trained on the same labels (under other perturbations):
    the maps matched against are the mean of theirs and ``trained``'s (``ensemble_maps``).
    progress(stage, fraction in [0, 1]) is called as each stage of ``STAGES`` advances.
    Returns every unlabelled image as a ranked candidate.
    """
    report = progress or _ignore
    seconds = dict.fromkeys(STAGES, 0.0)
    started = time.perf_counter()
    if trained is None:
        trained = train_model(
            labeled,
            config.model,
            val=val,
            init_state=init_state,
            progress=lambda step, steps, _loss: report("train", step / steps),
            show_progress_bar=show_progress_bar,
        )
        seconds["train"] = time.perf_counter() - started
    started = time.perf_counter()
    maps = ensemble_maps(
        [trained, *peers], unlabeled_images, report, show_progress_bar, flip_tta=config.flip_tta
    )
    seconds["predict"] = time.perf_counter() - started
    started = time.perf_counter()
    proposals = propose_all(
        source,
        cache,
        unlabeled_images,
        report,
        show_progress_bar,
        workers=config.proposal_workers,
    )
    seconds["propose"] = time.perf_counter() - started
    started = time.perf_counter()
    candidates = match_all(proposals, maps, config, report, show_progress_bar)
    seconds["match"] = time.perf_counter() - started
    bounded = config.empty_labels == "bounded"
    chosen = select(
        [(c.score, not c.match.class_mask.any()) for c in candidates],
        threshold=config.threshold,
        max_new=config.max_new_per_round,
        held=LabelCounts.of([s.mask for s in (*labeled, *val)]) if bounded else None,
        allow_empty=config.empty_labels != "never",
    )
    accepted = [candidates[position].index for position in chosen]
    return RoundResult(number, trained, candidates, accepted, seconds)


def run_samdsk(
    labeled: Sequence[TrainingSample],
    unlabeled_images: Sequence[np.ndarray],
    source: ProposalSource,
    cache: ProposalCache | None,
    config: RoundConfig,
    *,
    val: Sequence[TrainingSample] = (),
    first_model: TrainResult | None = None,
    first_peers: Sequence[TrainResult] = (),
    on_round: Callable[[RoundResult], None] | None = None,
    progress: Progress | None = None,
    show_progress_bar: bool = False,
) -> list[RoundResult]:
    """Rounds until one accepts nothing, the pool is used up, or ``config.max_rounds`` ran.

    Each round trains on ``labeled`` plus every machine label accepted so far and proposes
    only for images not yet accepted. Candidate indices and ``accepted`` in the results are
    positions in ``unlabeled_images``. first_model: a model already trained on ``labeled``,
    used by round 1; first_peers: models trained on the same labels under other settings,
    whose maps round 1 averages with its own (``run_round``'s peers; later rounds train one
    model). on_round(result) is called after each round; progress receives stages
    named ``"round N: <stage>"``. The last round's accepted labels are not trained on here:
    ``machine_labels`` gives them for a final training.
    """
    current = list(labeled)
    remaining = list(range(len(unlabeled_images)))
    results: list[RoundResult] = []
    state: dict[str, torch.Tensor] | None = None
    for number in range(1, config.max_rounds + 1):
        if not remaining:
            break
        report = _prefixed(progress, f"round {number}")
        result = run_round(
            current,
            [unlabeled_images[i] for i in remaining],
            source,
            cache,
            config,
            number=number,
            val=val,
            init_state=state,
            trained=first_model if number == 1 else None,
            peers=first_peers if number == 1 else (),
            progress=report,
            show_progress_bar=show_progress_bar,
        )
        result = _reindex(result, remaining)
        results.append(result)
        if on_round is not None:
            on_round(result)
        if not result.accepted:
            break
        current += machine_labels(result, unlabeled_images, config.model.machine_label_weight)
        taken = set(result.accepted)
        remaining = [i for i in remaining if i not in taken]
        if config.warm_start:
            state = {k: v.detach().clone() for k, v in result.trained.model.state_dict().items()}
    return results


def machine_labels(
    result: RoundResult, unlabeled_images: Sequence[np.ndarray], weight: float
) -> list[TrainingSample]:
    """The accepted annotations of ``result`` as training samples of loss weight ``weight``."""
    return [
        TrainingSample(
            unlabeled_images[i], result.candidate(i).match.class_mask, weight, machine=True
        )
        for i in result.accepted
    ]


def predict_in_batches(
    trained: TrainResult,
    images: Sequence[np.ndarray],
    progress: Progress | None = None,
    show_progress_bar: bool = False,
    *,
    flip_tta: bool = False,
) -> list[np.ndarray]:
    """``predict_probabilities`` with progress: one C x H x W float32 map in [0, 1] per image.

    On the CPU it runs with the threads that other processes leave free, as training does:
    with a busy core, two spinning OpenMP threads make inference many times slower than one.
    """
    step = trained.config.batch_size
    maps: list[np.ndarray] = []
    bar = tqdm(total=len(images), desc="predict", unit="image", disable=not show_progress_bar)
    with cpu_threads_for(model_device(trained.model), pinned=trained.config.cpu_threads), bar:
        for start in range(0, len(images), step):
            chunk = images[start : start + step]
            maps += predict_probabilities(
                trained.model, chunk, trained.config, batch_size=step, flip_tta=flip_tta
            )
            bar.update(len(chunk))
            if progress is not None:
                progress("predict", len(maps) / len(images))
    return maps


def ensemble_maps(
    models: Sequence[TrainResult],
    images: Sequence[np.ndarray],
    progress: Progress | None = None,
    show_progress_bar: bool = False,
    *,
    flip_tta: bool = False,
) -> list[np.ndarray]:
    """The mean of ``predict_in_batches`` over ``models``: one C x H x W map per image.

    Two models trained on the same labels under different perturbations make different
    mistakes: where one is sure of a region the other rejects, the mean falls towards 0.5 and
    no proposal matches it closely, so a mistake one model is sure of no longer scores near 1.
    """
    if not models:
        raise ConfigError("ensemble_maps needs at least one model")
    parts = [
        predict_in_batches(
            model,
            images,
            _share(progress, position, len(models)),
            show_progress_bar,
            flip_tta=flip_tta,
        )
        for position, model in enumerate(models)
    ]
    if len(parts) == 1:
        return parts[0]
    return [mean_map(per_image) for per_image in zip(*parts, strict=True)]


def mean_map(maps: Sequence[np.ndarray]) -> np.ndarray:
    """The pixelwise mean of equally shaped maps, float32 (one map is returned as float32)."""
    return np.stack(maps).mean(axis=0, dtype=np.float32)  # type: ignore[no-any-return]


def _share(progress: Progress | None, position: int, count: int) -> Progress | None:
    """``progress`` for the ``position``-th of ``count`` equal parts of one stage."""
    if progress is None or count == 1:
        return progress
    return lambda stage, fraction: progress(stage, (position + fraction) / count)


def propose_all(
    source: ProposalSource,
    cache: ProposalCache | None,
    images: Sequence[np.ndarray],
    progress: Progress | None = None,
    show_progress_bar: bool = False,
    *,
    workers: int = 1,
) -> list[Proposals]:
    """Proposals of each H x W x 3 uint8 image, read from and stored in ``cache`` if given;
    CPU sources spread over ``workers`` processes."""
    bar = tqdm(total=len(images), desc="proposals", unit="image", disable=not show_progress_bar)

    def done(count: int) -> None:
        bar.update(1)
        if progress is not None:
            progress("propose", count / len(images))

    try:
        return propose_many(source, cache, images, workers=workers, on_done=done)
    finally:
        bar.close()


def match_all(
    proposals: Sequence[Proposals],
    maps: Sequence[np.ndarray],
    config: RoundConfig,
    progress: Progress | None = None,
    show_progress_bar: bool = False,
) -> list[Candidate]:
    """Match each image's proposals against its C x H x W map; candidates ranked by score."""
    matches: list[MultiClassMatch] = []
    pairs = zip(proposals, maps, strict=True)
    for found, probability in tqdm(
        pairs, total=len(maps), desc="matching", unit="image", disable=not show_progress_bar
    ):
        matches.append(construct_annotation(found, probability, config))
        if progress is not None:
            progress("match", len(matches) / len(maps))
    order = rank_matches([m.score for m in matches])
    return [Candidate(i, matches[i], matches[i].score, rank) for rank, i in enumerate(order)]


def construct_annotation(
    proposals: Proposals, probabilities: np.ndarray, config: RoundConfig
) -> MultiClassMatch:
    """One image's annotation: the proposals matched against its C x H x W probability maps
    under ``config.knowledge``, then fused with the maps (``samdsk.fusion``)."""
    match = match_classes(
        proposals,
        probabilities,
        config.knowledge,
        max_candidates=config.max_candidates,
        max_pair_iou=config.max_pair_iou,
        min_relevance=config.min_relevance,
    )
    return fuse_with_model(match, probabilities, band=config.fusion_band)


def _reindex(result: RoundResult, positions: Sequence[int]) -> RoundResult:
    """Map indices into a subset of the pool back to positions in the whole pool."""
    result.candidates = [replace(c, index=positions[c.index]) for c in result.candidates]
    result.accepted = [positions[i] for i in result.accepted]
    return result


def _prefixed(progress: Progress | None, prefix: str) -> Progress | None:
    if progress is None:
        return None
    report = progress
    return lambda stage, fraction: report(f"{prefix}: {stage}", fraction)


def _ignore(stage: str, fraction: float) -> None:
    del stage, fraction
