"""The trained segmentation models of a project: one version per round that trained one, with
its settings and validation numbers, and its checkpoint (the file ``samdsk match --model``
and ``samdsk.model.checkpoint.load_checkpoint`` read)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.errors import NotFound
from app.models import ModelVersion, Project, Round
from app.services.model_settings import SERVER_ONLY_SETTINGS


def list_model_versions(
    *, session: Session, project: Project
) -> list[tuple[ModelVersion, int | None]]:
    """(version, the number of the round that trained it), newest first."""
    rows = session.execute(
        select(ModelVersion, Round.number)
        .outerjoin(Round, Round.id == ModelVersion.round_id)
        .where(ModelVersion.project_id == project.id)
        .order_by(ModelVersion.number.desc())
    )
    return [(version, number) for version, number in rows]


def get_model_version(
    *, session: Session, project: Project, number: int
) -> tuple[ModelVersion, int | None]:
    row = session.execute(
        select(ModelVersion, Round.number)
        .outerjoin(Round, Round.id == ModelVersion.round_id)
        .where(ModelVersion.project_id == project.id, ModelVersion.number == number)
    ).first()
    if row is None:
        raise NotFound(f"project {project.id} has no model version {number}")
    return row[0], row[1]


def public_config(config: dict[str, Any]) -> dict[str, Any]:
    """The settings a model was trained with, without the server's own file paths."""
    return {key: value for key, value in config.items() if key not in SERVER_ONLY_SETTINGS}


def public_metrics(metrics: dict[str, Any]) -> dict[str, Any]:
    """Its validation numbers; the storage keys of the peer models stay inside the server."""
    shown = dict(metrics)
    if "peers" in shown:
        shown["peers"] = [
            {k: v for k, v in peer.items() if k != "checkpoint_key"} for peer in shown["peers"]
        ]
    return shown
