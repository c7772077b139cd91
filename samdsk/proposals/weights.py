"""Loading Segment Anything models from local checkpoint files.

``sam_builders`` maps a model type to a function that builds the architecture with random
weights: segment_anything's own ``sam_model_registry`` for vit_b, vit_l and vit_h, plus
``vit_tiny``, a very small model assembled from segment_anything's modules so that tests and
CPU demos can run the whole SAM path in seconds (its weights are random: its masks are not
meaningful). ``load_sam`` then loads a state dict strictly, so a checkpoint of another type
fails loudly instead of half-loading.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import pickle
import zipfile
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from samdsk.errors import CheckpointError, ConfigError
from samdsk.interrupt import check_before_calls

if TYPE_CHECKING:
    from segment_anything.modeling import Sam

logger = logging.getLogger(__name__)

TINY_IMAGE_SIZE = 1024  # SAM's point grid, resizing and mask upscaling assume the 1024 input


def build_sam_vit_tiny() -> Sam:
    """A randomly initialised SAM with a 2-block, 32-wide encoder and a 32-wide decoder."""
    import torch
    from segment_anything.modeling import (
        ImageEncoderViT,
        MaskDecoder,
        PromptEncoder,
        Sam,
        TwoWayTransformer,
    )

    width, patch = 32, 16
    grid = TINY_IMAGE_SIZE // patch
    return Sam(
        image_encoder=ImageEncoderViT(
            depth=2,
            embed_dim=width,
            img_size=TINY_IMAGE_SIZE,
            mlp_ratio=2.0,
            norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
            num_heads=2,
            patch_size=patch,
            qkv_bias=True,
            use_rel_pos=True,
            global_attn_indexes=(),
            window_size=8,
            out_chans=width,
        ),
        prompt_encoder=PromptEncoder(
            embed_dim=width,
            image_embedding_size=(grid, grid),
            input_image_size=(TINY_IMAGE_SIZE, TINY_IMAGE_SIZE),
            mask_in_chans=8,
        ),
        mask_decoder=MaskDecoder(
            num_multimask_outputs=3,
            transformer=TwoWayTransformer(depth=1, embedding_dim=width, mlp_dim=64, num_heads=2),
            transformer_dim=width,
            iou_head_depth=2,
            iou_head_hidden_dim=32,
        ),
        pixel_mean=[123.675, 116.28, 103.53],
        pixel_std=[58.395, 57.12, 57.375],
    )


def _registry_builder(model_type: str) -> Callable[[], Sam]:
    def build() -> Sam:
        from segment_anything import sam_model_registry

        model: Sam = sam_model_registry[model_type](checkpoint=None)
        return model

    return build


sam_builders: dict[str, Callable[[], Sam]] = {
    "vit_b": _registry_builder("vit_b"),
    "vit_l": _registry_builder("vit_l"),
    "vit_h": _registry_builder("vit_h"),
    "vit_tiny": build_sam_vit_tiny,
}


def sam_builder(model_type: str) -> Callable[[], Sam]:
    """The builder of ``model_type``; ConfigError listing the valid types otherwise."""
    builder = sam_builders.get(model_type)
    if builder is None:
        raise ConfigError(
            f"unknown SAM model type {model_type!r}; valid: {', '.join(sam_builders)}"
        )
    return builder


def load_sam(checkpoint: Path, model_type: str, device: str) -> Sam:
    """Build ``model_type`` and load the state dict in ``checkpoint`` strictly, in eval mode
    on ``device``. Never downloads: a missing, unreadable or mismatched file raises
    CheckpointError; an unknown model type or unusable device raises ConfigError."""
    import torch

    builder = sam_builder(model_type)
    path = Path(checkpoint)
    if not path.is_file():
        raise CheckpointError(f"SAM checkpoint not found: {path} (download it and set its path)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, zipfile.BadZipFile, OSError) as error:
        raise CheckpointError(f"cannot read SAM checkpoint {path}: {error}") from error
    if not isinstance(state, Mapping) or not all(
        isinstance(v, torch.Tensor) for v in state.values()
    ):
        raise CheckpointError(f"{path} holds no state dict of tensors (a SAM weight file does)")
    model = builder()
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as error:
        first_line = str(error).splitlines()[0]
        raise CheckpointError(
            f"{path} does not fit SAM model type {model_type!r}: {first_line}"
        ) from error
    try:
        model = model.to(device)
    except (RuntimeError, AssertionError) as error:
        raise ConfigError(f"cannot use device {device!r} for SAM: {error}") from error
    model.eval()
    # Interruptible between encoder blocks and prompt batches, in the reference generator and
    # in the engine alike: each calls every block's first norm and the decoder's IoU head.
    check_before_calls(
        [
            *(block.norm1 for block in model.image_encoder.blocks),
            model.mask_decoder.iou_prediction_head,
        ]
    )
    logger.info("SAM %s loaded from %s (sha256 %s)", model_type, path, checkpoint_digest(path)[:12])
    return model


def checkpoint_digest(path: Path) -> str:
    """sha256 hex digest of a file, remembered per (path, size, modification time)."""
    stat = path.stat()
    return _digest(str(path.resolve()), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=32)
def _digest(path: str, size: int, mtime_ns: int) -> str:
    del size, mtime_ns  # part of the cache key only: a rewritten file is hashed again
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def resolve_device(device: str) -> str:
    """ "auto" -> "cuda" when available, else "cpu"; any other name is returned unchanged."""
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"
