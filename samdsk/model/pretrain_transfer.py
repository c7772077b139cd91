"""What a model takes from pretrained weights: the encoder alone, or the whole network.

Torch-free, so settings can be checked (and the command line built) without importing torch.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from samdsk.errors import ConfigError
from samdsk.model.config import ModelConfig

# "encoder": as ImageNet weights are used; "network": the decoder too (Models Genesis
# transfers both, since a U-Net's decoder is half its weights and learns from few labels too).
PRETRAIN_TRANSFERS = ("encoder", "network")


def check_pretrain_transfer(transfer: str) -> None:
    if transfer not in PRETRAIN_TRANSFERS:
        raise ConfigError(
            f"pretrain_transfer must be one of {PRETRAIN_TRANSFERS}; got {transfer!r}"
        )


def start_from(config: ModelConfig, path: Path, transfer: str) -> ModelConfig:
    """``config`` starting from the pretrained weights at ``path``, as ``transfer`` says."""
    check_pretrain_transfer(transfer)
    if transfer == "encoder":
        return replace(config, encoder_weights_path=str(path))
    return replace(config, init_weights_path=str(path))
