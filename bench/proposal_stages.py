"""Where the time of SAM automatic masks goes: stage timings and the decoder's cost.

Used by bench/proposals.py. Stage timings (milliseconds per image, the same images and model
for both): the reference's image encoder (``SamPredictor.set_image``, one image at a time)
and its decoding of the whole point grid (``predict_torch`` in batches of 64, which includes
upscaling every mask to full resolution); the engine's batched encoder, its decoder
transformer over the whole grid, and its mask logits for every prompt (an upper bound: the
engine makes them only for prompts above the predicted-IoU threshold).

The decoder's cost per prompt is device-independent: floating-point operations
(``torch.utils.flop_counter``) and the bytes every operation reads and writes (a dispatch
mode that adds up the sizes of each operation's tensor arguments and results; a tensor that
stays in cache is counted anyway, so it is an upper bound of memory traffic).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves
from torch.utils.flop_counter import FlopCounterMode

from samdsk.proposals.agreement import reference_decode
from samdsk.proposals.engine import SamMaskEngine
from samdsk.proposals.engine_decoder import FastMaskDecoder

Result = TypeVar("Result")
# Operations that only relabel memory: no bytes move.
_VIEWS = {
    "view",
    "_unsafe_view",
    "expand",
    "t",
    "permute",
    "transpose",
    "unsqueeze",
    "squeeze",
    "reshape",
    "detach",
    "slice",
    "select",
    "split",
    "alias",
    "as_strided",
}


def timed(device: str, work: Callable[[], Result]) -> tuple[Result, float, float | None]:
    """(result, seconds, peak GPU MiB or None) of ``work()``, the GPU drained around it."""
    cuda = device.startswith("cuda")
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    result = work()
    if cuda:
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated() / 2**20 if cuda else None
    return result, seconds, peak


def stage_times(
    model: Any, engine: SamMaskEngine, images: list[np.ndarray], points_per_side: int
) -> dict[str, float]:
    """Milliseconds per image of each stage (module docstring); decoding on the first image."""
    from segment_anything import SamPredictor
    from segment_anything.utils.amg import build_point_grid

    device = str(engine.device)
    image = images[0]
    height, width = image.shape[:2]
    grid = build_point_grid(points_per_side)  # x, y in [0, 1]
    points = grid * np.array([[width, height]])
    predictor = SamPredictor(model)
    per_image = 1000.0 / len(images)

    def reference_encoder() -> None:
        for each in images:
            predictor.set_image(each)

    def reference_decoder() -> None:
        for _ in reference_decode(predictor, points, (height, width)):
            pass

    decoder = engine.decoder
    with torch.inference_mode():
        _, encode_s, _ = timed(device, reference_encoder)
        predictor.set_image(image)  # decoding times are of the first image
        _, decode_s, _ = timed(device, reference_decoder)
        _, engine_encode_s, _ = timed(device, lambda: engine.embed(images))
        (embedding,) = engine.embed([image])
        terms = decoder.fast.image_terms(embedding)
        sparse = list(decoder.sparse_batches((0, 0, width, height), grid))
        decoded, transform_s, _ = timed(
            device, lambda: [decoder.fast.transform(terms, part) for part in sparse]
        )
        _, logits_s, _ = timed(
            device,
            lambda: [decoder.fast.mask_logits(terms, part.keys, part.hyper) for part in decoded],
        )
    return {
        "reference_encoder_ms": encode_s * per_image,
        "reference_decoder_with_upscaling_ms": decode_s * 1000.0,
        "engine_encoder_ms": engine_encode_s * per_image,
        "engine_decoder_transformer_ms": transform_s * 1000.0,
        "engine_mask_logits_every_prompt_ms": logits_s * 1000.0,
    }


class _Traffic(TorchDispatchMode):
    """Adds up the bytes of every non-view operation's tensor arguments and results."""

    def __init__(self) -> None:
        super().__init__()
        self.bytes = 0

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        out = func(*args, **(kwargs or {}))
        if func.__name__.split(".")[0] not in _VIEWS:
            tensors = [t for t in tree_leaves((args, kwargs, out)) if isinstance(t, torch.Tensor)]
            self.bytes += sum(t.numel() * t.element_size() for t in tensors)
        return out


def decoder_cost(model: Any, dtype: torch.dtype, prompts: int = 4) -> dict[str, dict[str, float]]:
    """GFLOP and MB moved per prompt: the reference ``MaskDecoder`` (float32) and
    ``FastMaskDecoder`` in ``dtype`` (mask logits for every prompt), on the model's device."""
    encoder = model.prompt_encoder
    device = next(model.parameters()).device
    height, width = encoder.image_embedding_size
    embedding = torch.randn(1, encoder.embed_dim, height, width, device=device)
    points = torch.rand(prompts, 1, 2, device=device) * encoder.input_image_size[0]
    fast = FastMaskDecoder(model, dtype)
    with torch.inference_mode():
        labels = torch.ones(prompts, 1, dtype=torch.int, device=device)
        sparse, dense = encoder(points=(points, labels), boxes=None, masks=None)
        terms = fast.image_terms(embedding)

        def reference() -> Any:
            return model.mask_decoder(
                image_embeddings=embedding,
                image_pe=encoder.get_dense_pe(),
                sparse_prompt_embeddings=sparse,
                dense_prompt_embeddings=dense,
                multimask_output=True,
            )

        report = {}
        for name, work in (("reference_fp32", reference), ("engine", lambda: fast(terms, sparse))):
            with FlopCounterMode(display=False) as flops:
                work()
            with _Traffic() as traffic:
                work()
            report[name] = {
                "gflop_per_prompt": flops.get_total_flops() / prompts / 1e9,
                "mb_moved_per_prompt": traffic.bytes / prompts / 1e6,
            }
    report["engine"]["dtype"] = str(dtype).removeprefix("torch.")  # type: ignore[assignment]
    return report
