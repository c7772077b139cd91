"""Arm A's models kept on disk and taken up again by a later run of the same split.

Arm A is the costliest part of an experiment under ``machine_augment="auto"`` (one full
training per policy: 40 of 64 minutes of a Kvasir-SEG run on a 2-core CPU), and every arm
starts from it. A later run that changes only what happens after A (threshold, peer maps,
fusion, the human share of C's retraining) can load A's models instead of training them again,
so it measures that change on the very same A. The models are refused unless the split and
every setting of A's training are the ones they were trained under.

The folder holds one ``samdsk.model`` checkpoint per policy and ``index.json``: the format,
the fingerprint of what the models depend on, and per policy the file, validation Dice,
training seconds, device and loss history.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from samdsk.dataset import Split
from samdsk.errors import CheckpointError, ConfigError
from samdsk.model.checkpoint import load_checkpoint, save_checkpoint
from samdsk.model.config import ModelConfig
from samdsk.model.train import TrainResult

FORMAT = "samdsk.supervised/1"
INDEX = "index.json"
# Model settings that do not change the trained weights' meaning for reuse: where they run.
_RUN_ONLY = ("device", "cpu_threads", "num_workers")


def supervised_fingerprint(
    data: Path,
    split: Split,
    model: ModelConfig,
    *,
    size: int,
    augment_choices: tuple[str, ...],
) -> dict[str, Any]:
    """What arm A's models depend on: the images (folder, size, which are labeled and which
    validate) and the training settings, less those that only say where it runs."""
    settings = {k: v for k, v in model.to_dict().items() if k not in _RUN_ONLY}
    return {
        "data": str(Path(data).resolve()),
        "size": size,
        "labeled": list(split.labeled),
        "validation": list(split.validation),
        "model": settings,
        "augment_choices": list(augment_choices),
    }


def save_supervised(
    folder: Path, trained: Mapping[str, TrainResult], fingerprint: Mapping[str, Any]
) -> None:
    """Write each policy's model and the index (written last, so a folder whose index exists
    holds every model it names)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    models = {}
    for policy, result in trained.items():
        name = f"{policy}.pt"
        save_checkpoint(folder / name, result)
        models[policy] = {
            "file": name,
            "best_val_dice": result.best_val_dice,
            "seconds": result.seconds,
            "device": result.device,
            "history": result.history,
        }
    index = {"format": FORMAT, "fingerprint": dict(fingerprint), "models": models}
    partial = folder / (INDEX + ".partial")
    partial.write_text(json.dumps(index, indent=1))
    os.replace(partial, folder / INDEX)


def load_supervised(
    folder: Path, fingerprint: Mapping[str, Any], device: str = "auto"
) -> dict[str, TrainResult]:
    """The models ``save_supervised`` wrote to ``folder`` (or to ``folder/supervised``), by
    policy in the order trained. Raises ``ConfigError`` when they were trained on another
    split or under other settings (naming what differs), ``CheckpointError`` when the folder
    or a model file is missing or unreadable."""
    folder = Path(folder)
    if not (folder / INDEX).is_file() and (folder / "supervised" / INDEX).is_file():
        folder = folder / "supervised"
    index = _read_index(folder)
    stored = index["fingerprint"]
    differing = sorted(k for k in {*stored, *fingerprint} if stored.get(k) != fingerprint.get(k))
    if differing:
        details = _model_differences(stored.get("model"), fingerprint.get("model"))
        raise ConfigError(
            f"the supervised models in {folder} were trained on another split or under other "
            f"settings ({', '.join(differing)}{details}); train A again instead"
        )
    loaded = {}
    for policy, entry in index["models"].items():
        model, config = load_checkpoint(folder / entry["file"], device)
        loaded[policy] = TrainResult(
            model,
            config,
            entry["best_val_dice"],
            [dict(step) for step in entry["history"]],
            float(entry["seconds"]),
            str(next(model.parameters()).device),
        )
    return loaded


def _read_index(folder: Path) -> dict[str, Any]:
    path = folder / INDEX
    if not path.is_file():
        raise CheckpointError(f"no supervised models in {folder} (no {INDEX})")
    try:
        index = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise CheckpointError(f"cannot read {path}: {error}") from error
    if (
        not isinstance(index, dict)
        or index.get("format") != FORMAT
        or not isinstance(index.get("fingerprint"), dict)
        or not isinstance(index.get("models"), dict)
        or not index["models"]
    ):
        raise CheckpointError(f"{path} is not a {FORMAT} index")
    return index


def _model_differences(stored: Any, wanted: Any) -> str:
    """': steps 1500 -> 1000, ...' for the model settings that differ, or ''."""
    if not isinstance(stored, dict) or not isinstance(wanted, dict):
        return ""
    keys = sorted(k for k in {*stored, *wanted} if stored.get(k) != wanted.get(k))
    return "".join(f"; model {k} {stored.get(k)!r} -> {wanted.get(k)!r}" for k in keys)
