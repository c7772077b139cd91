"""The segmentation model: build, train, predict probability maps, save and load.

Names are imported on first use, so ``samdsk.model.ModelConfig`` is available without
importing torch (which takes seconds); everything else pulls in torch when touched.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

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


def __getattr__(name: str) -> Any:
    module = _MODULES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
