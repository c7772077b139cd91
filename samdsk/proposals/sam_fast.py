"""The fast SAM engine as a proposal source, registered as ``"sam_fast"``.

Same checkpoint, settings and output as ``SamProposalSource`` ("sam"): N x H x W bool masks,
best first, scored by SAM's predicted IoU; the masks agree with the reference generator's (see
``samdsk.proposals.engine``). It adds ``precision`` ("auto": bf16 on CUDA, float32 elsewhere),
``image_batch`` for ``propose_batch``, and an optional on-disk embedding cache.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from samdsk.proposals.embeddings import EmbeddingCache
from samdsk.proposals.engine import (
    ENGINE_VERSION,
    EngineSettings,
    SamMaskEngine,
    check_image,
    resolve_precision,
)
from samdsk.proposals.weights import checkpoint_digest, load_sam, resolve_device, sam_builder
from samdsk.types import Proposals

# Fields that change how fast the masks come, not which masks come: left out of cache keys.
_NOT_IN_KEY = ("checkpoint", "device", "points_per_batch", "image_batch", "embedding_cache")


@dataclass(frozen=True)
class FastSamProposalSource:
    """SAM automatic masks from the batched engine; scores are SAM's predicted IoU.

    checkpoint, model_type and the thresholds are those of ``SamProposalSource``. device:
    "cpu", "cuda", "cuda:N" or "auto" (default). precision: "auto", "bf16" or "fp32" (the
    image encoder's and the decoder's image-side tensors; prompt tokens and predicted IoUs are
    always float32). points_per_batch: prompts decoded
    at once (None: 256 on a GPU, 64 on the CPU). embedding_cache: folder for image embeddings,
    or None to keep none.
    """

    name: ClassVar[str] = "sam_fast"

    checkpoint: str | Path
    model_type: str = "vit_b"
    device: str = "auto"
    points_per_side: int = 32
    points_per_batch: int | None = None
    pred_iou_thresh: float = 0.5
    stability_score_thresh: float = 0.5
    box_nms_thresh: float = 0.5
    crop_nms_thresh: float = 0.5
    crop_n_layers: int = 0
    precision: str = "auto"
    image_batch: int = 4
    embedding_cache: str | Path | None = None
    _engine: SamMaskEngine = dataclasses.field(init=False, repr=False, compare=False)
    _digest: str = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        sam_builder(self.model_type)  # an unknown type fails before anything is loaded
        settings = EngineSettings(
            points_per_side=self.points_per_side,
            points_per_batch=self.points_per_batch,
            pred_iou_thresh=self.pred_iou_thresh,
            stability_score_thresh=self.stability_score_thresh,
            box_nms_thresh=self.box_nms_thresh,
            crop_n_layers=self.crop_n_layers,
            crop_nms_thresh=self.crop_nms_thresh,
            image_batch=self.image_batch,
        )
        device = resolve_device(self.device)
        import torch

        resolve_precision(self.precision, torch.device(device.split(":")[0]))  # fail early
        path = Path(self.checkpoint).expanduser().resolve()
        object.__setattr__(self, "checkpoint", path)
        object.__setattr__(self, "_digest", checkpoint_digest(path))
        cache = None if self.embedding_cache is None else EmbeddingCache(self.embedding_cache)
        engine = SamMaskEngine(
            load_sam(path, self.model_type, device),
            settings,
            weights_sha256=self._digest,
            model_type=self.model_type,
            precision=self.precision,
            embeddings=cache,
            source=self.name,
        )
        object.__setattr__(self, "_engine", engine)

    @property
    def engine(self) -> SamMaskEngine:
        """The engine (its ``model``, ``embed`` and ``prompt_scores``)."""
        return self._engine

    def settings_key(self) -> str:
        """Weights digest, model type, thresholds, the precision in effect and the engine's
        version, as stable JSON (not the path, device or batch sizes, which do not choose the
        masks)."""
        settings = {
            field.name: getattr(self, field.name)
            for field in dataclasses.fields(self)
            if field.init and field.name not in _NOT_IN_KEY
        }
        settings["precision"] = self._engine.precision
        settings["engine_version"] = ENGINE_VERSION
        return json.dumps({"weights_sha256": self._digest[:16], **settings}, sort_keys=True)

    def describe(self) -> str:
        return (
            f"sam_fast {self.model_type} from {self.checkpoint} (sha256 {self._digest[:12]}, "
            f"{self._engine.precision} on {self._engine.device})"
        )

    def propose(self, image: np.ndarray) -> Proposals:
        """Proposals for an H x W x 3 uint8 RGB image: N x H x W bool masks, N float32
        predicted-IoU scores, best first. ShapeError for any other input."""
        return self._engine.generate([check_image(image)])[0]

    def propose_batch(self, images: Sequence[np.ndarray]) -> list[Proposals]:
        """``propose`` for several images, their encoder passes batched ``image_batch`` at a
        time."""
        return self._engine.generate(images)
