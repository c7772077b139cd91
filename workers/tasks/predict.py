"""Prediction of one uploaded image by a model version: the class mask and a summary per
class, written under keys derived from the job id, so a rerun overwrites the same outputs."""

from __future__ import annotations

import logging
import tempfile
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy import ndimage

from app.db import session_scope
from app.imaging import decode_image, mask_to_png, to_display_rgb8
from app.models import Job, ModelVersion, Project
from app.runtime import Runtime
from app.services.predictions import save_result
from samdsk.experiment_report import threshold_map
from samdsk.model import ModelConfig, load_checkpoint, predict_probabilities
from samdsk.model.infer import model_device
from samdsk.model.threads import cpu_threads_for
from workers.runner import JobContext

log = logging.getLogger(__name__)

# Reading and building a model takes longer than predicting one image, so each worker
# process keeps the few it used last; a checkpoint key never changes its content.
MAX_CACHED_MODELS = 2
_models: OrderedDict[str, tuple[torch.nn.Module, ModelConfig]] = OrderedDict()
_EIGHT_CONNECTED = np.ones((3, 3), dtype=bool)


def cached_model(runtime: Runtime, key: str) -> tuple[torch.nn.Module, ModelConfig]:
    if key in _models:
        _models.move_to_end(key)
        return _models[key]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.pt"
        path.write_bytes(runtime.storage.get(key))
        loaded = load_checkpoint(path, device="auto")
    log.info("loaded model checkpoint %s", key)
    _models[key] = loaded
    while len(_models) > MAX_CACHED_MODELS:
        _models.popitem(last=False)
    return loaded


def summarize_classes(
    probability: np.ndarray, class_mask: np.ndarray, names: list[str]
) -> list[dict[str, Any]]:
    """Per class: its share of the mask, mean probability over its pixels, highest
    probability anywhere and connected regions. probability: C x H x W float32 in [0, 1];
    class_mask: H x W uint8 class indices."""
    classes = []
    for index, name in enumerate(names, start=1):
        inside = class_mask == index
        pixels = int(inside.sum())
        channel = probability[index - 1]
        classes.append(
            {
                "index": index,
                "name": name,
                "foreground_fraction": pixels / inside.size,
                "mean_probability": float(channel[inside].mean()) if pixels else None,
                "max_probability": float(channel.max()),
                "regions": int(ndimage.label(inside, structure=_EIGHT_CONNECTED)[1]),
            }
        )
    return classes


def _probabilities(model: torch.nn.Module, rgb: np.ndarray, config: ModelConfig) -> np.ndarray:
    """C x H x W. On the CPU only the cores other processes leave free: a round may be
    training beside it, and spinning threads would stall both."""
    with cpu_threads_for(model_device(model), pinned=config.cpu_threads):
        return predict_probabilities(model, [rgb], config)[0]


def predict_image(runtime: Runtime, job: Job, context: JobContext) -> str:
    """Handler of a ``predict`` job (payload: upload_key, filename, model_version_id)."""
    payload = job.payload
    with session_scope(runtime.session_factory) as session:
        version = session.get(ModelVersion, payload["model_version_id"])
        project = session.get(Project, job.project_id)
        if version is None or project is None:
            raise RuntimeError(f"model version {payload['model_version_id']} no longer exists")
        key, number, names = version.checkpoint_key, version.number, list(project.class_names)
        version_id = version.id
    context.progress(0.1, "loading the model")
    model, config = cached_model(runtime, key)
    if config.num_classes != len(names):
        raise RuntimeError(
            f"model version {number} predicts {config.num_classes} classes; "
            f"the project has {len(names)}"
        )
    context.progress(0.3, "decoding the image")
    decoded = decode_image(
        runtime.storage.get(payload["upload_key"]),
        max_bytes=runtime.settings.max_upload_bytes,
        max_pixels=runtime.settings.max_image_pixels,
    )
    context.progress(0.4, "predicting")
    probability = _probabilities(model, to_display_rgb8(decoded), config)
    class_mask = threshold_map(probability)
    classes = summarize_classes(probability, class_mask, names)
    summary = {
        "model_version_id": version_id,
        "model_version": number,
        "width": decoded.width,
        "height": decoded.height,
        "classes": classes,
    }
    save_result(
        storage=runtime.storage, job_id=job.id, mask_png=mask_to_png(class_mask), summary=summary
    )
    share = sum(c["foreground_fraction"] for c in classes)
    return f"model version {number}: {share:.1%} of the image is foreground"
