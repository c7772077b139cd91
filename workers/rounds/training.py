"""Stage 1 of a round: train on the current labels, or load the model a crashed attempt
already trained and registered. A training an earlier attempt did not finish goes on from
its last snapshot (``workers.rounds.snapshots``) when the labels are the same."""

from __future__ import annotations

import dataclasses
import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from sqlalchemy import func, select

from app.db import session_scope
from app.models import Image, LabelSource, ModelVersion, Project, Round
from app.runtime import Runtime
from samdsk.augment_choice import (
    AugmentChoice,
    train_as_configured,
    train_choosing_augment,
)
from samdsk.model import (
    ModelConfig,
    TrainingSample,
    TrainResult,
    load_checkpoint,
    save_checkpoint,
)
from samdsk.model.config import AUTO_AUGMENT
from samdsk.peers import PeerScreen, screen_peers
from workers.rounds.data import current_labels, is_validation, load_mask, load_rgb
from workers.rounds.snapshots import StoredSnapshots, discard_snapshots
from workers.rounds.tracker import RoundTracker
from workers.runner import raise_if_stopping

log = logging.getLogger(__name__)
MIN_HUMAN_LABELS_FOR_VALIDATION = 5


class NothingToTrainOn(RuntimeError):
    pass


def checkpoint_key(project_id: int, round_number: int) -> str:
    return f"models/project-{project_id}/round-{round_number}.pt"


def load_training_samples(
    runtime: Runtime, project: Project, config: ModelConfig
) -> tuple[list[TrainingSample], list[TrainingSample]]:
    """(train, validation): validation is a stable fifth of the human labels, when there are
    enough of them; machine labels weigh ``config.machine_label_weight``."""
    with session_scope(runtime.session_factory) as session:
        labels = current_labels(session, project)
        images = {
            i.id: i for i in session.scalars(select(Image).where(Image.project_id == project.id))
        }
        for image in images.values():
            session.expunge(image)
    humans = sum(label.source is LabelSource.HUMAN for label in labels)
    train: list[TrainingSample] = []
    val: list[TrainingSample] = []
    for label in labels:
        raise_if_stopping()  # many labels take a while to read; a stop must not wait for all
        image = images[label.image_id]
        machine = label.source is LabelSource.MACHINE
        sample = TrainingSample(
            image=load_rgb(runtime, image),
            mask=load_mask(runtime, label.mask_key, image, len(project.class_names)),
            weight=config.machine_label_weight if machine else 1.0,
            machine=machine,
        )
        held_out = (
            label.source is LabelSource.HUMAN
            and humans >= MIN_HUMAN_LABELS_FOR_VALIDATION
            and is_validation(label.image_id)
        )
        (val if held_out else train).append(sample)
    if not train:
        raise NothingToTrainOn("no labeled images to train on: upload some human labels first")
    return train, val


@dataclass
class RoundModels:
    """The round's registered model, its ModelVersion id and, with peer maps, the models
    trained under the policies not chosen (their maps are averaged with the chosen one's)."""

    chosen: torch.nn.Module
    version_id: int
    peers: list[torch.nn.Module] = field(default_factory=list)

    @property
    def all(self) -> list[torch.nn.Module]:
        return [self.chosen, *self.peers]


def peer_checkpoint_key(project_id: int, round_number: int, policy: str) -> str:
    return f"models/project-{project_id}/round-{round_number}-peer-{policy}.pt"


def train_or_resume(
    runtime: Runtime,
    round_id: int,
    project: Project,
    config: ModelConfig,
    tracker: RoundTracker,
    *,
    peer_maps: bool = False,
) -> RoundModels:
    """The round's models: trained now, or loaded when a crashed attempt already registered
    them. ``peer_maps`` keeps (and stores) every policy's model that ``machine_augment="auto"``
    trains, not only the chosen one."""
    with session_scope(runtime.session_factory) as session:
        round_ = session.get(Round, round_id)
        assert round_ is not None
        version = (
            session.get(ModelVersion, round_.model_version_id) if round_.model_version_id else None
        )
        number = round_.number
    if version is not None:
        discard_snapshots(runtime, project.id, number)
        tracker.end("train")
        stored = version.metrics.get("peers", [])
        loaded = [_load(runtime, peer["checkpoint_key"]) for peer in stored]
        return RoundModels(_load(runtime, version.checkpoint_key), version.id, loaded)
    tracker.begin("train")
    train, val = load_training_samples(runtime, project, config)
    # under "auto" several trainings follow each other: keep each one's end, so that a
    # resumed round trains only the policies it had not finished
    snapshots = StoredSnapshots(
        runtime, project.id, number, keep_finished=config.machine_augment == AUTO_AUGMENT
    )
    result, choice, peers, screens = _train(train, val, config, tracker, peer_maps, snapshots)
    key = checkpoint_key(project.id, number)
    _store(runtime, key, result)
    metrics: dict[str, Any] = {
        "val_dice": result.best_val_dice,
        "train_images": len(train),
        "val_images": len(val),
        "seconds": result.seconds,
        "device": result.device,
        "augment": result.config.machine_augment,
    }
    if choice is not None:
        metrics["augment_choice"] = {"chosen": choice.chosen, "val_dice": choice.val_dice}
    if peer_maps:
        metrics["peer_screen"] = [screen.to_dict() for screen in screens]
        metrics["peers"] = []
        for policy, peer in peers.items():
            peer_key = peer_checkpoint_key(project.id, number, policy)
            _store(runtime, peer_key, peer)
            metrics["peers"].append(
                {"augment": policy, "val_dice": peer.best_val_dice, "checkpoint_key": peer_key}
            )
    # the version records the policy its weights were trained under, not "auto"
    version_id = _register(runtime, round_id, project.id, key, result.config, metrics)
    discard_snapshots(runtime, project.id, number)
    tracker.end("train")
    return RoundModels(result.model, version_id, [peer.model for peer in peers.values()])


def _train(
    train: list[TrainingSample],
    val: list[TrainingSample],
    config: ModelConfig,
    tracker: RoundTracker,
    peer_maps: bool,
    snapshots: StoredSnapshots,
) -> tuple[TrainResult, AugmentChoice | None, dict[str, TrainResult], list[PeerScreen]]:
    """(the chosen model, the perturbation choice under "auto", the other policies' models
    when ``peer_maps`` that the validation labels do not show worse than it, the verdict on
    each). Without validation labels "auto" trains the default policy alone, so there are
    no peers."""

    # with machine_augment "auto", one training per policy; progress counts all their steps
    def progress(step: int, total: int, _loss: float) -> None:
        tracker.update("train", step / total)

    if not (peer_maps and config.machine_augment == AUTO_AUGMENT):
        result, choice = train_as_configured(
            train, config, val=val, progress=progress, snapshots=snapshots
        )
        return result, choice, {}, []
    chosen = train_choosing_augment(train, config, val=val, progress=progress, snapshots=snapshots)
    peers = {p: r for p, r in chosen.trained.items() if p != chosen.choice.chosen}
    if not peers:
        log.warning(
            "peer maps asked for, but with %d validation labels only %s trained: the round "
            "matches against one model's maps (5 or more human labels give validation labels)",
            len(val),
            chosen.choice.chosen,
        )
    kept, screens = screen_peers(chosen.result, peers, val)
    for screen in screens:
        log.info("round's %s", screen.describe())
    return chosen.result, chosen.choice, kept, screens


def _store(runtime: Runtime, key: str, result: TrainResult) -> None:
    # The checkpoint holds every weight, so the server's weight files need not be named in
    # it: whoever downloads a project's model learns nothing of the server's disk.
    config = dataclasses.replace(result.config, encoder_weights_path=None, init_weights_path=None)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.pt"
        save_checkpoint(path, result, config)
        runtime.storage.put_at(key, path.read_bytes())


def _register(
    runtime: Runtime,
    round_id: int,
    project_id: int,
    key: str,
    config: ModelConfig,
    metrics: dict[str, Any],
) -> int:
    with session_scope(runtime.session_factory) as session:
        number = (
            session.scalar(
                select(func.max(ModelVersion.number)).where(ModelVersion.project_id == project_id)
            )
            or 0
        ) + 1
        version = ModelVersion(
            project_id=project_id,
            round_id=round_id,
            number=number,
            checkpoint_key=key,
            config=config.to_dict(),
            metrics=metrics,
        )
        session.add(version)
        session.flush()
        round_ = session.get(Round, round_id)
        assert round_ is not None
        round_.model_version_id = version.id
        round_.metrics = {**round_.metrics, "model": metrics}
        return version.id


def _load(runtime: Runtime, key: str) -> torch.nn.Module:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.pt"
        path.write_bytes(runtime.storage.get(key))
        model, _ = load_checkpoint(path, device="auto")
    return model
