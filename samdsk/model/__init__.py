"""The segmentation model: build, train, predict probability maps, save and load.

Names are imported on first use, so ``samdsk.model.ModelConfig`` is available without
importing torch (which takes seconds); everything else pulls in torch when touched.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from samdsk._lazy import lazy_exports

if TYPE_CHECKING:
    from samdsk.model.checkpoint import load_checkpoint, save_checkpoint
    from samdsk.model.config import ModelConfig, TrainingSample
    from samdsk.model.factory import build_model, list_architectures, list_encoders
    from samdsk.model.infer import predict_probabilities
    from samdsk.model.train import TrainResult, train_model

__all__ = [
    "ModelConfig",
    "TrainResult",
    "TrainingSample",
    "build_model",
    "list_architectures",
    "list_encoders",
    "load_checkpoint",
    "predict_probabilities",
    "save_checkpoint",
    "train_model",
]

_MODULES = {
    "ModelConfig": "config",
    "TrainingSample": "config",
    "build_model": "factory",
    "list_architectures": "factory",
    "list_encoders": "factory",
    "predict_probabilities": "infer",
    "TrainResult": "train",
    "train_model": "train",
    "load_checkpoint": "checkpoint",
    "save_checkpoint": "checkpoint",
}


__getattr__, __dir__ = lazy_exports(__name__, _MODULES, globals(), __all__)
