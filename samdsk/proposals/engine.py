"""A fast SAM automatic mask generator: the reference's inputs, settings and masks, batched.

``SamAutomaticMaskGenerator`` spends most of its time outside the image encoder: it decodes
64 prompts at a time, upscales every mask to full resolution before filtering it, and reads
each mask back to the host while run-length encoding it. ``SamMaskEngine`` instead

1. encodes images (and crops) in batches, in bf16 on a GPU, with fused attention
   (``engine_encoder.encode``: the encoder's function without writing attention scores out),
   reading and writing an optional on-disk ``EmbeddingCache``;
2. decodes large prompt batches with ``FastMaskDecoder`` (the reference decoder's function
   with the prompt-independent work done once per image, fused projections and per-pixel
   upscaling; image-side tensors in bf16 on a GPU, prompt tokens and predicted IoUs in
   float32), makes mask logits only for prompts with a mask above the predicted-IoU
   threshold, and filters on the 256 x 256 low-resolution logits: the stability test uses an
   upper bound of the exact score (``engine_ops.stability_upper_bound``), so it only drops
   masks that the reference would drop too;
3. upscales the survivors exactly as the reference does (float32, same two bilinear steps),
   applies the exact stability threshold, box and crop-edge filters, and runs torchvision's
   ``batched_nms`` on the device;
4. upscales the NMS survivors once more (keeping low-resolution logits instead of full masks
   bounds memory), bit-packs them on the device and copies them to the host in one transfer.

It synchronises twice per prompt batch, never per mask. In float32 (the CPU default) its masks
are the reference's up to float32 rounding; in bf16 they agree up to bf16 rounding of
borderline pixels and scores.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from samdsk.errors import ConfigError
from samdsk.imageio import hash_array
from samdsk.model.config import check_image as check_rgb_image
from samdsk.proposals.embeddings import EmbeddingCache, EmbeddingKey
from samdsk.proposals.engine_encoder import encode
from samdsk.proposals.engine_ops import pack_masks, unpack_masks
from samdsk.proposals.engine_prompts import Candidates, PromptDecoder
from samdsk.types import Proposals

PRECISIONS = ("auto", "bf16", "fp32")
# The engine's arithmetic: part of cached proposals' keys, so that masks computed by another
# version (which may differ at rounding level) are not reused. 2: restructured decoder and
# fused encoder attention.
ENGINE_VERSION = 2
FINAL_CHUNK = 64  # masks upscaled at once in the last step: bounds full-resolution memory


@dataclass(frozen=True)
class EngineSettings:
    """The reference generator's settings (paper defaults) plus batch sizes.

    points_per_batch: prompts decoded at once; None picks 256 on a GPU, 64 on the CPU (the
    decoder holds one copy of the image embedding per prompt). image_batch: images or crops
    encoded at once. Neither changes the masks beyond floating-point rounding.
    """

    points_per_side: int = 32
    points_per_batch: int | None = None
    pred_iou_thresh: float = 0.5
    stability_score_thresh: float = 0.5
    stability_score_offset: float = 1.0
    box_nms_thresh: float = 0.5
    crop_n_layers: int = 0
    crop_nms_thresh: float = 0.5
    crop_overlap_ratio: float = 512 / 1500
    image_batch: int = 4

    def __post_init__(self) -> None:
        counts = {
            "points_per_side": self.points_per_side,
            "image_batch": self.image_batch,
            "points_per_batch": 1 if self.points_per_batch is None else self.points_per_batch,
        }
        # Settings may come from JSON, where true or "0.5" can stand where a number belongs.
        for name, value in counts.items():
            if not _is_integer(value) or value < 1:
                raise ConfigError(f"{name} must be an integer >= 1; got {value!r}")
        if not _is_integer(self.crop_n_layers) or self.crop_n_layers < 0:
            raise ConfigError(f"crop_n_layers must be an integer >= 0; got {self.crop_n_layers!r}")
        unit = ("pred_iou_thresh", "stability_score_thresh", "box_nms_thresh", "crop_nms_thresh")
        for name in (*unit, "crop_overlap_ratio"):
            value = getattr(self, name)
            if not _is_integer(value) and not isinstance(value, float):
                raise ConfigError(f"{name} must be a number; got {value!r}")
            if not 0.0 <= value <= 1.0:
                raise ConfigError(f"{name} must lie in [0, 1]; got {value!r}")
        if self.stability_score_offset <= 0:
            raise ConfigError("stability_score_offset must be > 0")


def _is_integer(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def resolve_precision(precision: str, device: torch.device) -> str:
    """ "auto" -> "bf16" on CUDA, "fp32" elsewhere; ConfigError for an unknown name."""
    if precision not in PRECISIONS:
        raise ConfigError(f"unknown precision {precision!r}; valid: {', '.join(PRECISIONS)}")
    if precision == "auto":
        return "bf16" if device.type == "cuda" else "fp32"
    return precision


def check_image(image: Any) -> np.ndarray:
    """The image as a contiguous H x W x 3 uint8 array, or ShapeError."""
    check_rgb_image(image)
    return np.ascontiguousarray(image)


@dataclass(frozen=True)
class _Job:
    """One encoder input: a crop (x0, y0, x1, y1) of image ``image_index``."""

    image_index: int
    crop: tuple[int, int, int, int]
    layer: int


class SamMaskEngine:
    """Automatic masks of a loaded ``segment_anything`` ``Sam`` model.

    weights_sha256 and model_type name the weights in embedding cache keys. precision:
    "auto" (bf16 on CUDA, float32 elsewhere), "bf16" or "fp32". source: the name written into
    the returned Proposals.
    """

    def __init__(
        self,
        model: Any,
        settings: EngineSettings,
        *,
        weights_sha256: str,
        model_type: str,
        precision: str = "auto",
        embeddings: EmbeddingCache | None = None,
        source: str = "sam_fast",
    ) -> None:
        self.model = model
        self.settings = settings
        self.device: torch.device = next(model.parameters()).device
        self.precision = resolve_precision(precision, self.device)
        self.weights_sha256 = weights_sha256
        self.model_type = model_type
        self.embeddings = embeddings
        self.source = source
        batch = settings.points_per_batch or (256 if self.device.type == "cuda" else 64)
        dtype = torch.bfloat16 if self.precision == "bf16" else torch.float32
        self.decoder = PromptDecoder(model, settings, batch, dtype)

    def generate(self, images: Sequence[np.ndarray]) -> list[Proposals]:
        """Proposals of each H x W x 3 uint8 RGB image: N x H x W bool masks, N float32
        predicted-IoU scores, best first. ShapeError for any other input."""
        checked = [check_image(image) for image in images]
        jobs = [
            _Job(index, crop, layer)
            for index, image in enumerate(checked)
            for crop, layer in zip(*self._crops(image.shape[:2]), strict=True)
        ]
        embeddings = self._embed(checked, jobs)
        results = []
        with torch.inference_mode():
            for index, image in enumerate(checked):
                mine = [
                    (job, embedding)
                    for job, embedding in zip(jobs, embeddings, strict=True)
                    if job.image_index == index
                ]
                results.append(self._generate_one(image, mine))
        return results

    def prompt_scores(self, image: np.ndarray) -> dict[str, np.ndarray]:
        """Unfiltered scores of every mask of the whole-image point grid, 3 per prompt in the
        reference's prompt-major order, as float32 arrays: ``predicted_iou``,
        ``stability_score`` (exact, on upscaled logits) and ``stability_bound`` (the
        low-resolution upper bound the engine filters with)."""
        (embedding,) = self.embed([image])
        height, width = image.shape[:2]
        with torch.inference_mode():
            iou, exact, bound = self.decoder.scores(
                embedding, (0, 0, width, height), self._grids()[0]
            )
        return {
            "predicted_iou": iou.cpu().numpy().astype(np.float32),
            "stability_score": exact.cpu().numpy().astype(np.float32),
            "stability_bound": bound.cpu().numpy().astype(np.float32),
        }

    def embed(self, images: Sequence[np.ndarray]) -> list[torch.Tensor]:
        """Full-image embeddings, 1 x C x h x w float32 on the engine's device (cached)."""
        checked = [check_image(image) for image in images]
        jobs = [
            _Job(index, (0, 0, image.shape[1], image.shape[0]), 0)
            for index, image in enumerate(checked)
        ]
        return self._embed(checked, jobs)

    def _generate_one(self, image: np.ndarray, jobs: list[tuple[_Job, torch.Tensor]]) -> Proposals:
        height, width = image.shape[:2]
        grids = self._grids()
        parts = [
            self.decoder.candidates(emb, job.crop, grids[job.layer], (height, width), index)
            for index, (job, emb) in enumerate(jobs)
        ]
        merged = Candidates.cat(parts)
        if len(jobs) > 1:
            merged = merged.crop_nms([job.crop for job, _ in jobs], self.settings.crop_nms_thresh)
        if len(merged) == 0:
            return Proposals.empty(height, width, self.source)
        order = torch.sort(merged.iou, descending=True, stable=True).indices
        merged = merged.select(order)
        crops = [job.crop for job, _ in jobs]
        packed = self._final_masks(merged, crops, (height, width))
        masks = unpack_masks(packed.cpu().numpy(), height, width)
        scores = merged.iou.float().cpu().numpy().astype(np.float32)
        return Proposals(masks=masks, scores=scores, source=self.source)

    def _final_masks(
        self, merged: Candidates, crops: list[tuple[int, int, int, int]], size: tuple[int, int]
    ) -> torch.Tensor:
        """Bit-packed N x ceil(H*W/8) masks of the survivors, in their order, on the device."""
        crop_of = merged.crop_index.cpu().numpy()  # one read per image, not per mask
        packed = []
        for start in range(0, len(merged), FINAL_CHUNK):
            stop = min(start + FINAL_CHUNK, len(merged))
            chunk = torch.zeros((stop - start, *size), dtype=torch.bool, device=self.device)
            for crop_index in np.unique(crop_of[start:stop]):
                rows = np.flatnonzero(crop_of[start:stop] == crop_index)
                where = torch.as_tensor(rows + start, device=self.device)
                masks = self.decoder.masks(merged.low_res[where], crops[crop_index])
                x0, y0, x1, y1 = crops[crop_index]
                chunk[torch.as_tensor(rows, device=self.device), y0:y1, x0:x1] = masks
            packed.append(pack_masks(chunk))
        return torch.cat(packed)

    def _embed(self, images: list[np.ndarray], jobs: list[_Job]) -> list[torch.Tensor]:
        found: dict[int, torch.Tensor] = {}
        keys: dict[int, EmbeddingKey] = {}
        if self.embeddings is not None:
            hashes = [hash_array(image) for image in images]
            for position, job in enumerate(jobs):
                keys[position] = EmbeddingKey(
                    hashes[job.image_index],
                    job.crop,
                    self.weights_sha256,
                    self.model_type,
                    self.precision,
                )
                stored = self.embeddings.get(keys[position])
                if stored is not None:
                    found[position] = torch.from_numpy(stored)[None].to(self.device)
        missing = [position for position in range(len(jobs)) if position not in found]
        for start in range(0, len(missing), self.settings.image_batch):
            batch = missing[start : start + self.settings.image_batch]
            encoded = self._encode([self._crop(images, jobs[p]) for p in batch])
            for position, embedding in zip(batch, encoded, strict=True):
                found[position] = embedding[None]
                if self.embeddings is not None:
                    self.embeddings.put(keys[position], embedding.cpu().numpy())
        return [found[position] for position in range(len(jobs))]

    def _encode(self, crops: list[np.ndarray]) -> torch.Tensor:
        """B x C x h x w float32 embeddings of B H x W x 3 uint8 crops, in one encoder call."""
        with torch.inference_mode(), self._autocast():
            inputs = torch.cat([self.decoder.preprocess(crop) for crop in crops])
            features = encode(self.model.image_encoder, inputs)
        return features.float()

    @staticmethod
    def _crop(images: list[np.ndarray], job: _Job) -> np.ndarray:
        x0, y0, x1, y1 = job.crop
        return images[job.image_index][y0:y1, x0:x1]

    def _crops(self, size: tuple[int, ...]) -> tuple[list[tuple[int, int, int, int]], list[int]]:
        from segment_anything.utils.amg import generate_crop_boxes

        boxes, layers = generate_crop_boxes(
            size, self.settings.crop_n_layers, self.settings.crop_overlap_ratio
        )
        return [(int(a), int(b), int(c), int(d)) for a, b, c, d in boxes], list(layers)

    def _grids(self) -> list[np.ndarray]:
        from segment_anything.utils.amg import build_all_layer_point_grids

        grids: list[np.ndarray] = build_all_layer_point_grids(
            self.settings.points_per_side, self.settings.crop_n_layers, 1
        )
        return grids

    def _autocast(self) -> torch.autocast:
        return torch.autocast(
            device_type=self.device.type,
            dtype=torch.bfloat16,
            enabled=self.precision == "bf16",
        )
