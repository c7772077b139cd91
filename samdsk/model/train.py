"""Train a segmentation model on labelled samples, selecting the weights by validation Dice."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from functools import partial

import numpy as np
import torch
from tqdm import tqdm

from samdsk.errors import CheckpointError, ConfigError
from samdsk.model.config import AUTO_AUGMENT, ModelConfig, TrainingSample
from samdsk.model.data import ResizedSamples, TrainingBatches, one_hot_targets, resize_samples
from samdsk.model.factory import build_model, resolve_device
from samdsk.model.infer import forward_logits
from samdsk.model.label_mix import MIX_TOLERANCE, human_share_for_mix
from samdsk.model.loss import dice_per_image, weighted_loss
from samdsk.model.precision import autocast_bf16, precision_name
from samdsk.model.resume import (
    SnapshotStore,
    TrainingState,
    training_fingerprint,
    usable_snapshot,
)
from samdsk.model.threads import cpu_threads_for

logger = logging.getLogger(__name__)

ProgressCallback = Callable[[int, int, float], None]


@dataclass
class TrainResult:
    """A trained model (the selected weights loaded, eval mode, on ``device``).

    history: one dict per step with ``step`` and ``loss``, plus ``val_dice`` at validation
    steps. best_val_dice: validation Dice of the weights held (the best checkpoint's, or the
    final one's when there were fewer than ``config.min_val_for_selection`` validation
    images); None when no validation samples were given (then the model holds the final
    weights). config: the settings the training ran under (with ``mix_human_share``, the
    human share it chose is in ``human_share``).
    """

    model: torch.nn.Module
    config: ModelConfig
    best_val_dice: float | None
    history: list[dict[str, float]]
    seconds: float
    device: str


def train_model(
    train: Sequence[TrainingSample],
    config: ModelConfig,
    *,
    val: Sequence[TrainingSample] = (),
    init_state: dict[str, torch.Tensor] | None = None,
    progress: ProgressCallback | None = None,
    show_progress_bar: bool = False,
    snapshots: SnapshotStore | None = None,
) -> TrainResult:
    """Train ``config.steps`` steps of AdamW (cosine-decayed learning rate) on ``train``.

    Loss: per-sample BCE + soft Dice, weighted by ``TrainingSample.weight``; samples of
    weight 0 are left out. Validates every ``config.val_every`` steps and at the end, keeping
    the state with the best mean per-image Dice (at ``input_size``; the final state when
    ``val`` has fewer than ``config.min_val_for_selection`` images). ``init_state`` starts from
    given weights (e.g. the previous round's model). ``progress(step, steps, loss)`` is called
    after every step; ``show_progress_bar`` draws a tqdm bar on stderr. Seeds the Python,
    NumPy and torch global generators with ``config.seed``. On the CPU the run uses the cores
    other processes leave free when it starts (see ``threads``), or ``config.cpu_threads``;
    same config and data -> same losses on the same device and thread count (logged).

    ``snapshots`` keeps snapshots of the training under its ``machine_augment`` name; one of
    the same settings and data is gone on from, and the result is the same as the run that
    was not interrupted (on a CPU, whose generator the snapshot holds).
    """
    if config.machine_augment == AUTO_AUGMENT:
        raise ConfigError(
            "machine_augment 'auto' chooses between trainings: "
            "use samdsk.augment_choice.train_choosing_augment"
        )
    started = time.perf_counter()
    used = [sample for sample in train if sample.weight > 0]
    if not used:
        raise ConfigError(f"no training sample with weight > 0 (of {len(train)} given)")
    _seed_everything(config.seed)
    device = resolve_device(config.device)
    with cpu_threads_for(device, config.num_workers, config.cpu_threads) as threads:
        model = _prepare_model(config, device, init_state)
        logger.info(
            "training %s/%s on %s (%d threads, %s): %d samples (%d of weight 0 left out), %d val",
            config.arch,
            config.encoder,
            device,
            threads,
            precision_name(config, device),
            len(used),
            len(train) - len(used),
            len(val),
        )
        data = resize_samples(used, config.input_size, config.num_classes)
        config = _share_for_mix(config, data)
        val_data = resize_samples(val, config.input_size, config.num_classes) if val else None
        resume = _Resume.find(snapshots, config, data, val_data)
        history, best = _fit(
            model, data, val_data, config, device, progress, show_progress_bar, resume
        )
    kept_val_dice = _keep_selected_weights(model, best, history, len(val), config)
    model.eval()
    seconds = time.perf_counter() - started
    logger.info("trained in %.1f s; val Dice of the weights kept: %s", seconds, kept_val_dice)
    return TrainResult(model, config, kept_val_dice, history, seconds, str(device))


def _keep_selected_weights(
    model: torch.nn.Module,
    best: tuple[float, dict[str, torch.Tensor]] | None,
    history: Sequence[dict[str, float]],
    val_count: int,
    config: ModelConfig,
) -> float | None:
    """Load the best checkpoint into ``model`` when the validation set is large enough to
    choose by; returns the validation Dice of the weights kept (None: nothing validated)."""
    if best is None:
        return None
    if val_count >= config.min_val_for_selection:
        model.load_state_dict(best[1])
        return best[0]
    logger.info(
        "%d validation images (< %d): keeping the final weights, not the best checkpoint",
        val_count,
        config.min_val_for_selection,
    )
    return history[-1]["val_dice"]  # the loop validates at its last step


def _prepare_model(
    config: ModelConfig, device: torch.device, init_state: dict[str, torch.Tensor] | None
) -> torch.nn.Module:
    model = build_model(config)
    if init_state is not None:
        try:
            model.load_state_dict(init_state)
        except RuntimeError as error:
            raise CheckpointError(f"init_state does not fit {config.arch}: {error}") from error
    # channels_last: NHWC convolutions are faster (on a 2-core CPU: 1.2x at 160 px, 1.6x at 256).
    return model.to(device).to(memory_format=torch.channels_last)


@dataclass
class _Resume:
    """Where a training keeps its snapshots, under which name and fingerprint, and the
    snapshot it goes on from (None: from step 0)."""

    store: SnapshotStore | None
    name: str
    fingerprint: str
    start: TrainingState | None

    @classmethod
    def find(
        cls,
        store: SnapshotStore | None,
        config: ModelConfig,
        data: ResizedSamples,
        val_data: ResizedSamples | None,
    ) -> _Resume:
        if store is None:
            return cls(None, config.machine_augment, "", None)
        fingerprint = training_fingerprint(config, data, val_data)
        start = usable_snapshot(store, config.machine_augment, fingerprint, config.steps)
        return cls(store, config.machine_augment, fingerprint, start)


def _fit(
    model: torch.nn.Module,
    data: ResizedSamples,
    val_data: ResizedSamples | None,
    config: ModelConfig,
    device: torch.device,
    progress: ProgressCallback | None,
    show_progress_bar: bool,
    resume: _Resume,
) -> tuple[list[dict[str, float]], tuple[float, dict[str, torch.Tensor]] | None]:
    """The training loop; returns the history and (best Dice, best state) if validated."""
    optimizer, schedule = optimizer_and_schedule(model, config, config.steps)
    history: list[dict[str, float]] = []
    best: tuple[float, dict[str, torch.Tensor]] | None = None
    done = 0
    if resume.start is not None:
        history, best, done = _restore(resume.start, model, optimizer, schedule)
    model.train()
    batches = _batches(data, config, device, first_step=done + 1)
    bf16 = autocast_bf16(config, device)  # decided once: it holds for the whole run
    with tqdm(
        total=config.steps, initial=done, disable=not show_progress_bar, desc="training"
    ) as bar:
        for step, (inputs, targets, weights) in enumerate(batches, start=done + 1):
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                logits = model(inputs)
            loss = weighted_loss(logits, targets, weights)
            optimizer.zero_grad(set_to_none=True)
            torch.autograd.backward(loss)
            optimizer.step()
            schedule.step()
            record = {"step": float(step), "loss": float(loss.item())}
            if val_data is not None and (step % config.val_every == 0 or step == config.steps):
                record["val_dice"] = validation_dice(model, val_data, config)
                if best is None or record["val_dice"] > best[0]:
                    best = (record["val_dice"], _copy_state(model))
                model.train()
            history.append(record)
            if resume.store is not None:
                snapshot = partial(
                    _snapshot, resume, step, model, optimizer, schedule, history, best
                )
                resume.store.offer(resume.name, step, config.steps, snapshot)
            bar.update(1)
            bar.set_postfix(loss=f"{record['loss']:.4f}")
            if progress is not None:
                progress(step, config.steps, record["loss"])
    return history, best


def _restore(
    state: TrainingState,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    schedule: torch.optim.lr_scheduler.LRScheduler,
) -> tuple[list[dict[str, float]], tuple[float, dict[str, torch.Tensor]] | None, int]:
    """Load a snapshot into the training's parts; returns (history, best, steps done)."""
    try:
        model.load_state_dict(state.model)
        optimizer.load_state_dict(state.optimizer)
        schedule.load_state_dict(state.schedule)
        torch.set_rng_state(state.torch_rng)
    except (RuntimeError, KeyError, ValueError, TypeError) as error:
        raise CheckpointError(f"training snapshot does not fit: {error}") from error
    return list(state.history), state.best, state.step


def _snapshot(
    resume: _Resume,
    step: int,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    schedule: torch.optim.lr_scheduler.LRScheduler,
    history: list[dict[str, float]],
    best: tuple[float, dict[str, torch.Tensor]] | None,
) -> TrainingState:
    """The training after ``step``, on the CPU (the optimizer's state is saved as it is)."""
    return TrainingState(
        step=step,
        fingerprint=resume.fingerprint,
        model=_copy_state(model, "cpu"),
        optimizer=optimizer.state_dict(),
        schedule=schedule.state_dict(),
        torch_rng=torch.get_rng_state(),
        history=list(history),
        best=None if best is None else (best[0], {k: v.cpu() for k, v in best[1].items()}),
    )


def optimizer_and_schedule(
    model: torch.nn.Module, config: ModelConfig, steps: int
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    """AdamW at ``config.lr`` with its learning rate decayed on a cosine to 1 % over ``steps``."""
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.lr, weight_decay=config.weight_decay
    )
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(
        optimizer, T_max=steps, eta_min=config.lr * 0.01
    )
    return optimizer, schedule


def _share_for_mix(config: ModelConfig, data: ResizedSamples) -> ModelConfig:
    """With ``mix_human_share``, the settings this training runs under: that human share where
    the machine labels' size mix departs from the human labels', else none (both recorded in
    ``human_share``, so a saved checkpoint says what the training did)."""
    if not config.mix_human_share:
        return config
    share, departure = human_share_for_mix(data.masks, data.machine, config.mix_human_share)
    logger.info(
        "machine labels' size mix departs from the human labels' by %.2f (tolerance %.2f): "
        "human share %g",
        departure,
        MIX_TOLERANCE,
        share,
    )
    return replace(config, human_share=share, mix_human_share=0.0)


def _batches(
    data: ResizedSamples, config: ModelConfig, device: torch.device, *, first_step: int = 1
) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    dataset = TrainingBatches(
        data,
        steps=config.steps,
        batch_size=config.batch_size,
        seed=config.seed,
        num_classes=config.num_classes,
        human_share=config.human_share,
        keep_empty_share=config.keep_empty_share,
        machine_augment=config.machine_augment,
    )
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_size=None,  # each item is already a whole batch
        sampler=range(first_step - 1, config.steps),  # item k is the batch of step k + 1
        num_workers=config.num_workers,
        pin_memory=device.type == "cuda",
    )
    for inputs, targets, weights in loader:
        yield (
            inputs.to(device, non_blocking=True).contiguous(memory_format=torch.channels_last),
            targets.to(device, non_blocking=True),
            weights.to(device, non_blocking=True),
        )


def validation_dice(model: torch.nn.Module, data: ResizedSamples, config: ModelConfig) -> float:
    """Mean per-image Dice at threshold 0.5 of ``model`` on resized samples (empty/empty = 1)."""
    return float(_dice_scores(model, data, config).mean().item())


def validation_dice_per_image(
    model: torch.nn.Module, data: ResizedSamples, config: ModelConfig
) -> np.ndarray:
    """Dice at threshold 0.5 of ``model`` on each resized sample (empty/empty = 1)."""
    return _dice_scores(model, data, config).cpu().numpy().astype(np.float64)


def _dice_scores(model: torch.nn.Module, data: ResizedSamples, config: ModelConfig) -> torch.Tensor:
    model.eval()
    scores = []
    with torch.inference_mode():
        for start in range(0, len(data), config.batch_size):
            stop = start + config.batch_size
            logits = forward_logits(model, data.images[start:stop], config)
            masks = torch.from_numpy(data.masks[start:stop]).to(logits.device)
            scores.append(dice_per_image(logits, one_hot_targets(masks, config.num_classes)))
    return torch.cat(scores)


def _copy_state(model: torch.nn.Module, device: str | None = None) -> dict[str, torch.Tensor]:
    """A copy of the weights, on their own device or on ``device``."""
    return {
        key: value.detach().clone() if device is None else value.detach().to(device, copy=True)
        for key, value in model.state_dict().items()
    }


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
