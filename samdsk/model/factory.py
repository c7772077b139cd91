"""Build segmentation_models_pytorch models from a ``ModelConfig``; never downloads weights."""

from __future__ import annotations

import functools
import logging
from pathlib import Path

import segmentation_models_pytorch as smp
import timm
import torch

from samdsk.errors import CheckpointError, ConfigError
from samdsk.model.config import ModelConfig

logger = logging.getLogger(__name__)

# Lower-case key -> the class name users write (smp itself matches names case-insensitively).
_ARCHITECTURES: dict[str, str] = {
    key: cls.__name__ for key, cls in smp.MODEL_ARCHITECTURES_MAPPING.items()
}
# Key rewrites tried on an encoder weight file: as saved, from a whole smp model, from
# DataParallel, and into the wrapper that holds a timm ("tu-") encoder.
_KEY_REWRITES = (("", ""), ("encoder.", ""), ("module.", ""), ("", "model."))


def list_architectures() -> list[str]:
    """Valid ``ModelConfig.arch`` values."""
    return sorted(_ARCHITECTURES.values())


def list_encoders() -> list[str]:
    """Valid ``ModelConfig.encoder`` values (besides ``tu-<timm model>``)."""
    return sorted(smp.encoders.get_encoder_names())


def build_model(config: ModelConfig) -> torch.nn.Module:
    """A freshly initialised model for ``config``, on the CPU, in training mode.

    Input: B x 3 x S x S float (ImageNet-normalised); output: B x C x S x S logits.
    Encoder weights come from ``config.encoder_weights_path`` when given, else random init.
    """
    model = create_architecture(config)
    if config.encoder_weights_path is None:
        logger.info("encoder weights: random init (no local ImageNet weights given)")
    else:
        load_encoder_weights(model, Path(config.encoder_weights_path))
    if config.init_weights_path is not None:
        load_network_weights(model, Path(config.init_weights_path))
    return model


def create_architecture(config: ModelConfig) -> torch.nn.Module:
    """The bare architecture of ``config`` with random weights (no weight file is read)."""
    arch = _check_names(config)
    model = _create(arch, config.encoder, config.num_classes)
    logger.info("built %s with encoder %s, %d classes", arch, config.encoder, config.num_classes)
    return model


def check_architecture(config: ModelConfig) -> None:
    """ConfigError unless ``create_architecture`` can build ``config``'s network, found without
    building it: on PyTorch's meta device, where parameters have shapes but no memory, so that
    smp's and timm's own compatibility rules (DPT takes timm encoders only, DeepLabV3 and PAN
    dilated ones, Linknet and UNet++ no ``mit_b*``, most decoders no plain ViT) are applied by
    the code that makes them. The meta network then takes one ``input_size`` image, which
    finds encoders that accept only the size they were made for (``tu-swin_*_224`` and the
    plain ViTs at 256 px) before a round fails on its first step. About 0.01-1 s where a real
    build of a large encoder takes seconds and gigabytes."""
    _meta_build(_check_names(config), config.encoder, config.num_classes, config.input_size)


def _check_names(config: ModelConfig) -> str:
    """The smp class name of ``config.arch``; ConfigError for an unknown arch or encoder."""
    arch = _ARCHITECTURES.get(config.arch.lower())
    if arch is None:
        raise ConfigError(f"unknown arch {config.arch!r}; valid: {list_architectures()}")
    encoder = config.encoder
    if encoder.startswith("tu-"):
        if not timm.is_model(encoder[3:]):
            raise ConfigError(f"unknown timm encoder {encoder[3:]!r} (in {encoder!r})")
    elif encoder not in smp.encoders.get_encoder_names():
        raise ConfigError(
            f"unknown encoder {encoder!r}; valid: {list_encoders()} or 'tu-<timm model name>'"
        )
    return arch


def _create(arch: str, encoder: str, classes: int) -> torch.nn.Module:
    """smp's model, on the current default device; ConfigError where smp or timm refuse."""
    try:
        model: torch.nn.Module = smp.create_model(
            arch, encoder_name=encoder, encoder_weights=None, classes=classes
        )
    except (ValueError, KeyError, RuntimeError, TypeError, AttributeError) as error:
        raise ConfigError(f"cannot build {arch} with encoder {encoder!r}: {error}") from error
    return model


@functools.lru_cache(maxsize=256)  # a project's rounds ask for the same network again
def _meta_build(arch: str, encoder: str, classes: int, input_size: int) -> None:
    """``_create`` and one forward pass on the meta device. Where a model reads a value (the
    ``mit_b*`` encoders read their drop-path rates with ``.item()``), the meta device cannot
    say: the network is taken as buildable, and the worker's real build decides."""
    try:
        with torch.device("meta"):
            model = _create(arch, encoder, classes)
            _forward(model, arch, encoder, input_size)
    except ConfigError as error:
        if not _meta_only(error.__cause__):
            raise
        logger.debug("%s with %s: not checkable on the meta device (%s)", arch, encoder, error)


def _forward(model: torch.nn.Module, arch: str, encoder: str, input_size: int) -> None:
    """One ``input_size`` image through ``model`` in eval mode; ConfigError if it does not
    fit. Models refuse sizes with assertions (timm) as well as exceptions, so both count."""
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(1, 3, input_size, input_size))
    except (AssertionError, ValueError, RuntimeError, TypeError) as error:
        raise ConfigError(
            f"{arch} with encoder {encoder!r} cannot take {input_size}x{input_size} images: {error}"
        ) from error


def _meta_only(error: BaseException | None) -> bool:
    """Whether ``error`` says only that a meta tensor holds no data."""
    return isinstance(error, RuntimeError) and "meta tensor" in str(error)


def load_encoder_weights(model: torch.nn.Module, path: Path) -> tuple[int, int, int]:
    """Load a local state-dict file into ``model.encoder``; returns (loaded, missing, unexpected).

    Keys may carry an ``encoder.`` or ``module.`` prefix. Unmatched keys are tolerated and
    counted; a file that matches no key at all, or whose tensors have other shapes, fails.
    """
    encoder = getattr(model, "encoder", None)
    if not isinstance(encoder, torch.nn.Module):
        raise ConfigError(f"{type(model).__name__} has no .encoder to load weights into")
    raw = _read_state_dict(path, "encoder weights")
    wanted = set(encoder.state_dict())
    state = _best_rewrite(raw, wanted)
    matched = {key: value for key, value in state.items() if key in wanted}
    if not matched:
        raise CheckpointError(f"no tensor of {path} matches encoder {type(encoder).__name__}")
    try:
        # The base method: some smp encoders override it without ``strict`` or a return value.
        torch.nn.Module.load_state_dict(encoder, matched, strict=False)
    except RuntimeError as error:
        raise CheckpointError(f"encoder weights {path} do not fit: {error}") from error
    loaded, missing, unexpected = len(matched), len(wanted) - len(matched), len(raw) - len(matched)
    log = logger.warning if missing else logger.info
    log(
        "encoder weights: %s (%d loaded, %d missing, %d unexpected)",
        path,
        loaded,
        missing,
        unexpected,
    )
    return loaded, missing, unexpected


def load_network_weights(model: torch.nn.Module, path: Path) -> tuple[int, int]:
    """Load every tensor of a local state-dict file whose name and shape fit ``model`` (a
    network of the same architecture, such as ``samdsk pretrain``'s: encoder and decoder; a
    head for another number of outputs keeps its random weights). Returns (loaded, skipped);
    a file of which nothing fits fails."""
    raw = _read_state_dict(path, "network weights")
    own = model.state_dict()
    state = {key.removeprefix("module."): value for key, value in raw.items()}
    fitting = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    if not fitting:
        raise CheckpointError(f"no tensor of {path} fits {type(model).__name__}")
    model.load_state_dict(fitting, strict=False)
    skipped = len(state) - len(fitting)
    logger.info(
        "network weights: %s (%d loaded, %d of the model's left as they were, %d skipped)",
        path,
        len(fitting),
        len(own) - len(fitting),
        skipped,
    )
    return len(fitting), skipped


def _read_state_dict(path: Path, what: str) -> dict[str, torch.Tensor]:
    """The state dict in a ``torch.save`` file (plain, or under a ``state_dict`` key)."""
    if not path.is_file():
        raise CheckpointError(f"{what} file not found: {path}")
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for unreadable files
        raise CheckpointError(f"cannot read {what} {path}: {error}") from error
    if isinstance(raw, dict) and isinstance(raw.get("state_dict"), dict):
        raw = raw["state_dict"]
    if not isinstance(raw, dict) or not all(isinstance(v, torch.Tensor) for v in raw.values()):
        raise CheckpointError(f"{path} does not hold a state dict of tensors")
    return raw


def _best_rewrite(raw: dict[str, torch.Tensor], wanted: set[str]) -> dict[str, torch.Tensor]:
    """The prefix rewrite of ``raw``'s keys that matches the most keys of ``wanted``."""
    candidates = []
    for strip, add in _KEY_REWRITES:
        candidates.append(
            {add + k.removeprefix(strip): v for k, v in raw.items() if k.startswith(strip)}
        )
    return max(candidates, key=lambda state: len(wanted.intersection(state)))


def resolve_device(name: str) -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; other names are checked and returned."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as error:
        raise ConfigError(f"invalid device {name!r}; use 'auto', 'cpu' or 'cuda[:N]'") from error
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} requested but CUDA is not available")
    return device
