"""Save and load trained models as one file: weights plus the ``ModelConfig`` that built them.

The file is a ``torch.save`` dict of plain types only (``format``, ``config`` as a JSON string,
``state_dict``), so loading uses ``torch.load(weights_only=True)`` and never unpickles code.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from samdsk.errors import CheckpointError, ConfigError
from samdsk.model.config import ModelConfig
from samdsk.model.factory import create_architecture, resolve_device
from samdsk.model.train import TrainResult

FORMAT = "samdsk.model/1"


def save_checkpoint(
    path: Path, result_or_model: TrainResult | torch.nn.Module, config: ModelConfig | None = None
) -> None:
    """Write the model's weights (moved to the CPU) and config to ``path``, atomically.

    ``config`` defaults to the ``TrainResult``'s own config; it is required for a bare model.
    Parent folders are created.
    """
    if isinstance(result_or_model, TrainResult):
        model, config = result_or_model.model, config or result_or_model.config
    else:
        model = result_or_model
    if config is None:
        raise ConfigError("save_checkpoint needs the ModelConfig of a bare model")
    state = {key: value.detach().cpu() for key, value in model.state_dict().items()}
    payload = {"format": FORMAT, "config": json.dumps(config.to_dict()), "state_dict": state}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Write then rename, so a crash never leaves a half-written file under the real name.
    partial = path.with_name(path.name + ".partial")
    torch.save(payload, partial)
    os.replace(partial, path)


def load_checkpoint(path: Path, device: str = "cpu") -> tuple[torch.nn.Module, ModelConfig]:
    """The model (eval mode, on ``device``; ``"auto"`` allowed) and config saved at ``path``.

    Raises ``CheckpointError`` when the file is missing, unreadable, not a checkpoint of this
    format, or its weights do not fit the stored architecture. The encoder weight file named
    in the config is not needed: the checkpoint holds every weight.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for corrupt or foreign files
        raise CheckpointError(f"cannot read checkpoint {path}: {error}") from error
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a {FORMAT} checkpoint")
    try:
        config = ModelConfig.from_dict(json.loads(payload["config"]))
        model = create_architecture(config)
    except (KeyError, TypeError, ValueError) as error:  # ConfigError is a ValueError
        raise CheckpointError(f"{path} holds an invalid config: {error}") from error
    state = payload.get("state_dict")
    if not isinstance(state, dict):
        raise CheckpointError(f"{path} holds no state_dict")
    try:
        model.load_state_dict(state)
    except RuntimeError as error:
        raise CheckpointError(f"weights in {path} do not fit {config.arch}: {error}") from error
    model = model.to(resolve_device(device)).to(memory_format=torch.channels_last)
    return model.eval(), config
