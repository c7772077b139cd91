"""Settings of the segmentation model and the training sample container.

Torch-free on purpose: the service can validate and store a ``ModelConfig`` without importing
torch. Images are resized to ``input_size x input_size`` by a plain resize (the aspect ratio is
not kept); predictions are resized back to each image's original size.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from samdsk.errors import ConfigError, ShapeError

_INT_FIELDS = (
    "num_classes",
    "input_size",
    "steps",
    "batch_size",
    "seed",
    "val_every",
    "min_val_for_selection",
)
_POSITIVE_INT_FIELDS = ("num_classes", "steps", "batch_size", "val_every")
# Settings that fix the human share of a batch themselves, which mix_human_share (a share it
# chooses per training) may not be beside.
FIXED_SHARE_SETTINGS = ("human_share", "keep_empty_share")
_FLOAT_FIELDS = ("lr", "weight_decay", "machine_label_weight", "human_share", "mix_human_share")
MACHINE_AUGMENTATIONS = ("same", "strong", "strong_all")
# not a policy but a choice between policies, made on validation Dice (samdsk.augment_choice)
AUTO_AUGMENT = "auto"


@dataclass(frozen=True)
class ModelConfig:
    """How to build and train one segmentation model (serialisable with ``to_dict``).

    arch: a segmentation_models_pytorch architecture (``Unet``, ``FPN``, ...; case-insensitive).
    encoder: an smp encoder name, or ``tu-<timm model>``.
    encoder_weights_path: local state-dict file of encoder weights (e.g. ImageNet); ``None``
        means random initialisation. Nothing is ever downloaded.
    init_weights_path: local state-dict file of a whole network of this architecture (e.g.
        ``samdsk pretrain``'s): every tensor whose name and shape fit is loaded, decoder
        included, after the encoder weights; a head for another number of outputs stays random.
    num_classes: C foreground classes; the model outputs C sigmoid channels (multi-label).
    input_size: square side (multiple of 32) that images are resized to for training and
        inference.
    amp: bf16 autocast on CUDA.
    cpu_bf16: bf16 autocast on a CPU with native bf16 instructions (AVX512-BF16 or AMX), about
        1.6x as fast to train there and 1.9x to predict (``samdsk.model.precision``; ignored
        with a warning on other CPUs).
        Off by default: CPU results compare with earlier float32 runs only when it stays off.
    device: ``"auto"`` (CUDA when available, else CPU), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
    machine_label_weight: the ``TrainingSample.weight`` that callers give machine-made labels
        (human labels weigh 1.0); 0 leaves machine labels out of training.
    human_share: the share of every batch drawn from human labels (``TrainingSample.machine``
        false) when machine labels are trained on too, in [0, 1). 0 draws from all samples
        alike, so with 13 human labels beside 115 machine ones a batch of 8 holds one human
        label on average; 0.5 keeps half of each batch human however many machine labels join.
    mix_human_share: the human share a training takes only where its machine labels are of
        another mix of foreground sizes than its human labels (empty, under 5 %, 5-20 %, larger;
        total variation distance above ``samdsk.model.label_mix.MIX_TOLERANCE``), else 0; the
        share taken is the ``human_share`` of ``TrainResult.config``. 0 turns the rule off.
        Cannot be combined with ``human_share`` > 0 or ``keep_empty_share``.
    keep_empty_share: when machine labels are trained on too, every batch holds empty masks
        (nothing to segment) in the share the human labels hold them, drawn from all labels.
        Machine labels are seldom empty (empty annotations wait for a reviewer), so drawing
        from all alike lowers that share round by round and the model learns to find something
        on every image. Cannot be combined with ``human_share`` > 0.
    machine_augment: ``"same"`` trains machine labels under the augmentations human labels get;
        ``"strong"`` adds a hue rotation, stronger colour jitter, blur and CutMix among machine
        labels (noisy-student training, ``samdsk.model.strong_augment``), so a model does not
        simply learn back the labels an earlier model made; ``"strong_all"`` perturbs human
        labels too (a control for the perturbations' own effect); ``"auto"`` trains under
        ``"same"`` and under ``"strong_all"`` and keeps the model of the better validation Dice
        (``samdsk.augment_choice.train_choosing_augment``; ``train_model`` itself needs one
        policy).
    val_every: validate every N steps and keep the weights with the best validation Dice.
    min_val_for_selection: with fewer validation images than this, the final weights are kept
        (validation Dice is still recorded). Picking among checkpoints on one or two images
        follows those images, not the model: on BUSI at 10 % labels (2 validation images, one
        normal and so scored 0 or 1) the picked checkpoints were near random. The learning rate
        decays to 1 % by the last step, so the final weights are a settled choice.
    num_workers: data-loader worker processes that prepare and augment batches (0 = inline).
    cpu_threads: torch threads for training and prediction on the CPU. ``None`` takes the
        cores other processes leave free when a job starts (``samdsk.model.threads``), which
        is fastest on a shared machine; a number pins the count, so a seeded run repeats bit
        for bit whatever else runs beside it (a training's sums follow its thread count).
    """

    arch: str = "Unet"
    encoder: str = "resnet34"
    encoder_weights_path: str | None = None
    init_weights_path: str | None = None
    num_classes: int = 1
    input_size: int = 256
    steps: int = 600
    batch_size: int = 8
    lr: float = 1e-3
    weight_decay: float = 1e-4
    seed: int = 0
    amp: bool = True
    cpu_bf16: bool = False
    device: str = "auto"
    machine_label_weight: float = 1.0
    human_share: float = 0.0
    mix_human_share: float = 0.0
    keep_empty_share: bool = False
    machine_augment: str = "same"
    val_every: int = 100
    min_val_for_selection: int = 5
    num_workers: int = 0
    cpu_threads: int | None = None

    def __post_init__(self) -> None:
        for name in ("arch", "encoder", "device"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value:
                raise ConfigError(f"{name} must be a non-empty string; got {value!r}")
        for name in ("encoder_weights_path", "init_weights_path"):
            path = getattr(self, name)
            if path is not None and (not isinstance(path, str) or not path):
                raise ConfigError(f"{name} must be a non-empty string or None: {path!r}")
        if self.machine_augment not in (*MACHINE_AUGMENTATIONS, AUTO_AUGMENT):
            raise ConfigError(
                f"machine_augment must be one of {(*MACHINE_AUGMENTATIONS, AUTO_AUGMENT)}; "
                f"got {self.machine_augment!r}"
            )
        for name in ("amp", "cpu_bf16", "keep_empty_share"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"{name} must be a bool; got {getattr(self, name)!r}")
        if self.keep_empty_share and self.human_share:
            raise ConfigError("keep_empty_share cannot be combined with human_share > 0")
        if self.mix_human_share and any(getattr(self, name) for name in FIXED_SHARE_SETTINGS):
            raise ConfigError(
                "mix_human_share chooses the human share itself; "
                "it cannot be combined with human_share > 0 or keep_empty_share"
            )
        _check_numbers(self)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict of every field."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelConfig:
        """The inverse of ``to_dict``; missing keys take their defaults, unknown keys fail."""
        valid = [field.name for field in dataclasses.fields(cls)]
        unknown = sorted(set(data) - set(valid))
        if unknown:
            raise ConfigError(f"unknown ModelConfig keys {unknown}; valid keys: {valid}")
        return cls(**dict(data))


def _check_numbers(config: ModelConfig) -> None:
    for name in (*_INT_FIELDS, "num_workers"):
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{name} must be an integer; got {value!r}")
    for name in _POSITIVE_INT_FIELDS:
        if getattr(config, name) < 1:
            raise ConfigError(f"{name} must be >= 1; got {getattr(config, name)}")
    if config.seed < 0 or config.num_workers < 0 or config.min_val_for_selection < 0:
        raise ConfigError("seed, num_workers and min_val_for_selection must be >= 0")
    threads = config.cpu_threads
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int)):
        raise ConfigError(f"cpu_threads must be an integer or None; got {threads!r}")
    if threads is not None and threads < 1:
        raise ConfigError(f"cpu_threads must be >= 1 or None; got {threads}")
    if config.input_size < 32 or config.input_size % 32:
        # Encoders halve the resolution five times; other sizes break the skip connections.
        raise ConfigError(f"input_size must be a positive multiple of 32; got {config.input_size}")
    for name in _FLOAT_FIELDS:
        value = getattr(config, name)
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise ConfigError(f"{name} must be a finite number; got {value!r}")
        if value < 0:
            raise ConfigError(f"{name} must be >= 0; got {value}")
    if config.lr <= 0:
        raise ConfigError(f"lr must be > 0; got {config.lr}")
    for name in ("human_share", "mix_human_share"):
        if getattr(config, name) >= 1:
            raise ConfigError(f"{name} must be < 1; got {getattr(config, name)}")


@dataclass(frozen=True, eq=False)
class TrainingSample:
    """One labelled image.

    image: H x W x 3 uint8 RGB, any size.
    mask: H x W, uint8 class indices 0..C (0 = background) or bool (one class).
    weight: loss weight >= 0 (e.g. ``ModelConfig.machine_label_weight`` for machine labels);
        samples of weight 0 are left out of training entirely.
    machine: the label was made by the method, not by a person (``ModelConfig.human_share``).
    """

    image: np.ndarray
    mask: np.ndarray
    weight: float = 1.0
    machine: bool = False

    def __post_init__(self) -> None:
        check_image(self.image)
        mask = self.mask
        if not isinstance(mask, np.ndarray) or mask.ndim != 2:
            raise ShapeError(f"mask must be an H x W array; got {_describe(mask)}")
        if mask.dtype not in (np.uint8, np.bool_):
            raise ShapeError(f"mask must be uint8 class indices or bool; got {mask.dtype}")
        if mask.shape != self.image.shape[:2]:
            raise ShapeError(f"mask shape {mask.shape} != image shape {self.image.shape[:2]}")
        weight = self.weight
        if isinstance(weight, bool) or not isinstance(weight, numbers.Real):
            raise ConfigError(f"weight must be a number; got {weight!r}")
        if not math.isfinite(weight) or weight < 0:
            raise ConfigError(f"weight must be finite and >= 0; got {weight}")
        if not isinstance(self.machine, bool):
            raise ConfigError(f"machine must be a bool; got {self.machine!r}")


def check_image(image: object) -> None:
    """Raise ``ShapeError`` unless ``image`` is a non-empty H x W x 3 uint8 array."""
    if (
        not isinstance(image, np.ndarray)
        or image.ndim != 3
        or image.shape[2] != 3
        or image.dtype != np.uint8
        or image.shape[0] == 0
        or image.shape[1] == 0
    ):
        raise ShapeError(f"image must be an H x W x 3 uint8 RGB array; got {_describe(image)}")


def _describe(value: object) -> str:
    if isinstance(value, np.ndarray):
        return f"{value.dtype} array of shape {value.shape}"
    return type(value).__name__
