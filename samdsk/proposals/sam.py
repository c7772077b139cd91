"""Segment Anything as a proposal source: ``SamAutomaticMaskGenerator`` over a point grid.

Defaults follow the SamDSK paper (lower thresholds than SAM's own, so more candidate regions
survive for the matching): 32 x 32 points, predicted-IoU, stability and both NMS thresholds
at 0.5. Weights come from a local checkpoint file only; nothing is downloaded.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from samdsk.errors import ConfigError, ShapeError
from samdsk.proposals.weights import checkpoint_digest, load_sam, resolve_device, sam_builder
from samdsk.types import Proposals

__all__ = ["SamProposalSource", "load_sam"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SamProposalSource:
    """SAM automatic masks as proposals; scores are SAM's predicted IoU.

    checkpoint: local SAM weight file (a state dict) of ``model_type`` (vit_b, vit_l, vit_h,
    or vit_tiny for tests). device: "cpu", "cuda", "cuda:N" or "auto". The other fields are
    ``SamAutomaticMaskGenerator`` settings.
    """

    name: ClassVar[str] = "sam"

    checkpoint: str | Path
    model_type: str = "vit_b"
    device: str = "cpu"
    points_per_side: int = 32
    points_per_batch: int = 64
    pred_iou_thresh: float = 0.5
    stability_score_thresh: float = 0.5
    box_nms_thresh: float = 0.5
    crop_nms_thresh: float = 0.5
    crop_n_layers: int = 0
    _generator: Any = dataclasses.field(init=False, repr=False, compare=False)
    _digest: str = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        from segment_anything import SamAutomaticMaskGenerator

        sam_builder(self.model_type)  # an unknown type fails before anything is loaded
        if self.points_per_side < 1 or self.points_per_batch < 1 or self.crop_n_layers < 0:
            raise ConfigError("points_per_side and points_per_batch must be >= 1")
        thresholds = (self.pred_iou_thresh, self.stability_score_thresh)
        if not all(0.0 <= t <= 1.0 for t in (*thresholds, self.box_nms_thresh)):
            raise ConfigError("SAM thresholds must lie in [0, 1]")
        path = Path(self.checkpoint).expanduser().resolve()
        object.__setattr__(self, "checkpoint", path)
        model = load_sam(path, self.model_type, resolve_device(self.device))
        object.__setattr__(self, "_digest", checkpoint_digest(path))
        generator = SamAutomaticMaskGenerator(
            model,
            points_per_side=self.points_per_side,
            points_per_batch=self.points_per_batch,
            pred_iou_thresh=self.pred_iou_thresh,
            stability_score_thresh=self.stability_score_thresh,
            box_nms_thresh=self.box_nms_thresh,
            crop_n_layers=self.crop_n_layers,
            crop_nms_thresh=self.crop_nms_thresh,
        )
        object.__setattr__(self, "_generator", generator)

    def settings_key(self) -> str:
        """Model type, weights digest and generator settings as stable JSON (not the path or
        the device: the same weights give the same proposals wherever they are stored)."""
        settings = {
            field.name: getattr(self, field.name)
            for field in dataclasses.fields(self)
            if field.init and field.name not in ("checkpoint", "device")
        }
        return json.dumps({"weights_sha256": self._digest[:16], **settings}, sort_keys=True)

    def describe(self) -> str:
        return f"sam {self.model_type} from {self.checkpoint} (sha256 {self._digest[:12]})"

    def propose(self, image: np.ndarray) -> Proposals:
        """Proposals for an H x W x 3 uint8 RGB image: N x H x W bool masks, N float32
        predicted-IoU scores, best first."""
        import torch

        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ShapeError(
                f"expected an H x W x 3 uint8 RGB image; got {image.dtype} {image.shape}"
            )
        with torch.inference_mode():
            records = self._generator.generate(np.ascontiguousarray(image))
        if not records:
            return Proposals.empty(image.shape[0], image.shape[1], self.name)
        scores = np.array([r["predicted_iou"] for r in records], dtype=np.float32)
        order = np.argsort(-scores, kind="stable")
        masks = np.stack([np.asarray(records[i]["segmentation"], dtype=bool) for i in order])
        return Proposals(masks=masks, scores=scores[order], source=self.name)
