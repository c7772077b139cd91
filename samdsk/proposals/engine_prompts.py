"""Prompt decoding and filtering for ``SamMaskEngine``: one crop's point grid -> candidates.

``PromptDecoder`` turns a crop's embedding and point grid into ``Candidates``: the masks that
pass the predicted-IoU, stability and crop-edge filters and the within-crop box NMS, held as
their 256 x 256 low-resolution logits (full-resolution masks are made only at the end, for
the few that survive). The decoder is ``FastMaskDecoder``: its image-side tensors follow the
engine's precision, while prompt tokens and predicted IoUs stay float32 (bf16 predicted IoUs
would tie often and make NMS pick among near-duplicates arbitrarily). Mask logits are made
only for prompts with a mask above the predicted-IoU threshold: the others' masks would all
be dropped by that test, which needs no mask.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from samdsk.proposals.engine_decoder import FastMaskDecoder
from samdsk.proposals.engine_ops import (
    mask_boxes,
    near_crop_edge,
    stability_score,
    stability_upper_bound,
    upscale_logits,
)

UPSCALE_CHUNK = 64  # masks upscaled at once: 64 x 1024 x 1024 float32 is 256 MiB


@dataclass(frozen=True)
class Candidates:
    """n masks on the device. low_res: n x 256 x 256 logits; iou, stability: n float32;
    boxes: n x 4 float32 (x0, y0, x1, y1) in image pixels; crop_index: n int64."""

    low_res: torch.Tensor
    iou: torch.Tensor
    stability: torch.Tensor
    boxes: torch.Tensor
    crop_index: torch.Tensor

    def __len__(self) -> int:
        return int(self.iou.shape[0])

    def select(self, index: torch.Tensor) -> Candidates:
        """The candidates at ``index`` (int64 positions or a bool mask), in that order."""
        return Candidates(
            self.low_res[index],
            self.iou[index],
            self.stability[index],
            self.boxes[index],
            self.crop_index[index],
        )

    @staticmethod
    def cat(parts: list[Candidates]) -> Candidates:
        return Candidates(*(torch.cat([getattr(p, f) for p in parts]) for f in _FIELDS))

    def box_nms(self, threshold: float) -> Candidates:
        """Greedy box NMS by predicted IoU; survivors best first."""
        from torchvision.ops import batched_nms

        keep = batched_nms(self.boxes, self.iou, torch.zeros_like(self.crop_index), threshold)
        return self.select(keep)

    def crop_nms(self, crops: list[tuple[int, int, int, int]], threshold: float) -> Candidates:
        """Duplicates between crops removed, preferring masks from smaller crops."""
        from torchvision.ops import batched_nms

        area = torch.tensor(
            [(x1 - x0) * (y1 - y0) for x0, y0, x1, y1 in crops], device=self.iou.device
        )
        scores = 1.0 / area[self.crop_index].float()
        keep = batched_nms(self.boxes, scores, torch.zeros_like(self.crop_index), threshold)
        return self.select(keep)


_FIELDS = ("low_res", "iou", "stability", "boxes", "crop_index")


class PromptDecoder:
    """The mask decoder of a ``Sam`` model over point grids, ``batch`` prompts at a time."""

    def __init__(self, model: Any, settings: Any, batch: int, dtype: torch.dtype) -> None:
        from segment_anything.utils.transforms import ResizeLongestSide

        self.model = model
        self.fast = FastMaskDecoder(model, dtype)
        self.settings = settings
        self.batch = batch
        self.frame: int = model.image_encoder.img_size
        self.transform = ResizeLongestSide(self.frame)
        self.threshold = float(model.mask_threshold)
        self.device: torch.device = next(model.parameters()).device

    def preprocess(self, image: np.ndarray) -> torch.Tensor:
        """H x W x 3 uint8 -> 1 x 3 x frame x frame normalised, padded encoder input (the
        reference's resize, so the same pixels reach the encoder)."""
        resized = torch.as_tensor(self.transform.apply_image(image), device=self.device)
        result: torch.Tensor = self.model.preprocess(resized.permute(2, 0, 1)[None].float())
        return result

    def candidates(
        self,
        embedding: torch.Tensor,
        crop: tuple[int, int, int, int],
        grid: np.ndarray,
        image_size: tuple[int, int],
        crop_index: int,
    ) -> Candidates:
        """Filtered, de-duplicated masks of the prompts ``grid`` (P x 2 in [0, 1], x then y)
        on ``crop`` of an image of ``image_size`` (H, W); boxes in image pixels."""
        s = self.settings
        parts = []
        floor = s.pred_iou_thresh if s.pred_iou_thresh > 0.0 else None
        for low_res, iou in self._decode_all(embedding, crop, grid, floor):
            keep = torch.ones_like(iou, dtype=torch.bool)
            if s.pred_iou_thresh > 0.0:
                keep &= iou > s.pred_iou_thresh
            if s.stability_score_thresh > 0.0:
                bound = stability_upper_bound(
                    low_res, self._input_size(crop), self.frame, self.threshold, self.offset
                )
                keep &= bound >= s.stability_score_thresh
            chosen = keep.nonzero()[:, 0]  # the batch's second and last read-back
            for start in range(0, len(chosen), UPSCALE_CHUNK):
                chunk = chosen[start : start + UPSCALE_CHUNK]
                parts.append(self._exact(low_res[chunk], iou[chunk], crop, image_size))
        if not parts:
            return _empty(self.device, self.frame // 4)
        found = Candidates.cat(parts).box_nms(s.box_nms_thresh)
        x0, y0, _, _ = crop
        shift = torch.tensor([x0, y0, x0, y0], dtype=torch.float32, device=self.device)
        crop_of = torch.full_like(found.crop_index, crop_index)
        return Candidates(found.low_res, found.iou, found.stability, found.boxes + shift, crop_of)

    def scores(
        self, embedding: torch.Tensor, crop: tuple[int, int, int, int], grid: np.ndarray
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Unfiltered per-mask (3 per prompt, prompt-major) predicted IoU, exact stability and
        its low-resolution upper bound, for comparisons with the reference."""
        ious, exact, bounds = [], [], []
        for low_res, iou in self._decode_all(embedding, crop, grid, None):
            ious.append(iou)
            bounds.append(
                stability_upper_bound(
                    low_res, self._input_size(crop), self.frame, self.threshold, self.offset
                )
            )
            for start in range(0, len(low_res), UPSCALE_CHUNK):
                chunk = low_res[start : start + UPSCALE_CHUNK]
                logits = upscale_logits(chunk, self._input_size(crop), _size(crop), self.frame)
                exact.append(stability_score(logits, self.threshold, self.offset))
        return torch.cat(ious), torch.cat(exact), torch.cat(bounds)

    def masks(self, low_res: torch.Tensor, crop: tuple[int, int, int, int]) -> torch.Tensor:
        """k x 256 x 256 logits -> k x crop height x crop width bool masks."""
        logits = upscale_logits(low_res, self._input_size(crop), _size(crop), self.frame)
        return logits > self.threshold

    @property
    def offset(self) -> float:
        return float(self.settings.stability_score_offset)

    def _exact(
        self,
        low_res: torch.Tensor,
        iou: torch.Tensor,
        crop: tuple[int, int, int, int],
        image_size: tuple[int, int],
    ) -> Candidates:
        logits = upscale_logits(low_res, self._input_size(crop), _size(crop), self.frame)
        stability = stability_score(logits, self.threshold, self.offset)
        boxes = mask_boxes(logits > self.threshold)
        keep = ~near_crop_edge(boxes, crop, image_size)
        if self.settings.stability_score_thresh > 0.0:
            keep &= stability >= self.settings.stability_score_thresh
        crop_of = torch.zeros(len(iou), dtype=torch.int64, device=self.device)
        return Candidates(low_res, iou, stability, boxes, crop_of).select(keep)

    def _decode_all(
        self,
        embedding: torch.Tensor,
        crop: tuple[int, int, int, int],
        grid: np.ndarray,
        iou_floor: float | None,
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """(3k x 256 x 256 float32 logits, 3k float32 predicted IoU) per batch of prompts, for
        the k prompts of the batch with a predicted IoU above ``iou_floor`` (all if None), in
        prompt order; one batch at a time, so that only one batch of logits is held."""
        terms = self.fast.image_terms(embedding)
        for sparse in self.sparse_batches(crop, grid):
            decoded = self.fast.transform(terms, sparse)
            keys, hyper, iou = decoded.keys, decoded.hyper, decoded.iou
            if iou_floor is not None:
                asked = (iou > iou_floor).any(dim=1).nonzero()[:, 0]  # one read-back per batch
                keys, hyper, iou = keys[asked], hyper[asked], iou[asked]
            low_res = self.fast.mask_logits(terms, keys, hyper)
            yield low_res.flatten(0, 1), iou.flatten(0, 1)

    def sparse_batches(
        self, crop: tuple[int, int, int, int], grid: np.ndarray
    ) -> Iterator[torch.Tensor]:
        """The prompt encoder's B x T x C embeddings of the point grid ``grid`` (P x 2 in
        [0, 1], x then y) on ``crop``, ``batch`` prompts at a time."""
        size = _size(crop)
        points = grid * np.array(size)[None, ::-1]  # grid is (x, y); size is (H, W)
        coords = self.transform.apply_coords(points, size)
        for start in range(0, len(coords), self.batch):
            batch = torch.as_tensor(coords[start : start + self.batch], device=self.device)
            labels = torch.ones(len(batch), dtype=torch.int, device=self.device)
            sparse, _ = self.model.prompt_encoder(
                points=(batch[:, None, :], labels[:, None]), boxes=None, masks=None
            )
            yield sparse

    def _input_size(self, crop: tuple[int, int, int, int]) -> tuple[int, int]:
        height, width = _size(crop)
        shape = self.transform.get_preprocess_shape(height, width, self.frame)
        return int(shape[0]), int(shape[1])


def _size(crop: tuple[int, int, int, int]) -> tuple[int, int]:
    x0, y0, x1, y1 = crop
    return y1 - y0, x1 - x0


def _empty(device: torch.device, side: int) -> Candidates:
    return Candidates(
        torch.zeros(0, side, side, device=device),
        torch.zeros(0, device=device),
        torch.zeros(0, device=device),
        torch.zeros(0, 4, device=device),
        torch.zeros(0, dtype=torch.int64, device=device),
    )
