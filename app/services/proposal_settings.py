"""Proposal settings: checked where they are given, so a bad one fails its request (422)
instead of a round minutes later, and completed with what only the server may decide.

Which SAM weights, of which model type, on which device, with which embedding folder, is the
server's configuration (``SAMDSK_SAM_CHECKPOINT``, ``SAMDSK_SAM_MODEL``): a client that could
name a file path would make the workers read any file it likes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app.errors import InvalidInput
from app.settings import Settings
from samdsk.errors import ConfigError
from samdsk.proposals.checks import check_proposal_settings as check_source_settings

SAM_SOURCES = ("sam", "sam_fast")
SERVER_ONLY_SETTINGS = ("checkpoint", "model_type", "device", "embedding_cache")


def default_source(settings: Settings) -> str:
    """SAM's reference generator when a checkpoint is configured, else the offline source."""
    return "sam" if settings.sam_checkpoint else "offline"


def merge_proposal_settings(
    settings: Settings, project_settings: Mapping[str, Any], overrides: Mapping[str, Any]
) -> dict[str, Any]:
    """The project's settings overridden by a round's, with the source named (the server's
    default where neither names one), and without the settings only the server may choose (a
    project stored before they were refused may hold them). A round that names another source
    than the project's starts from its own alone: one source's settings mean nothing to
    another."""
    project_source = project_settings.get("source", default_source(settings))
    source = overrides.get("source", project_source)
    base = project_settings if source == project_source else {}
    merged = {**base, **overrides, "source": source}
    return {key: value for key, value in merged.items() if key not in SERVER_ONLY_SETTINGS}


def resolve_proposal_settings(
    settings: Settings, project_settings: Mapping[str, Any], overrides: Mapping[str, Any]
) -> dict[str, Any]:
    """A round's proposal settings (``merge_proposal_settings``); a SAM source gets the
    server's checkpoint and model type, on the best device the worker has."""
    resolved = merge_proposal_settings(settings, project_settings, overrides)
    if resolved["source"] in SAM_SOURCES:
        resolved["checkpoint"] = str(settings.sam_checkpoint or "")
        resolved["model_type"] = settings.sam_model
        resolved["device"] = "auto"
    return resolved


def check_client_proposal_settings(
    settings: Settings, given: Mapping[str, Any], *, stored: Mapping[str, Any] | None = None
) -> None:
    """InvalidInput unless ``given`` (what a client sends now, over the project's ``stored``
    settings when a round starts) names a known source that this server can run, with known
    settings in range."""
    server_only = sorted(set(given) & set(SERVER_ONLY_SETTINGS))
    if server_only:
        raise InvalidInput(
            f"proposal settings {server_only} are the server's to set (SAMDSK_SAM_CHECKPOINT, "
            "SAMDSK_SAM_MODEL), not a request's"
        )
    merged = merge_proposal_settings(settings, stored or {}, given)
    source = merged.pop("source")
    if not isinstance(source, str):
        raise InvalidInput(f"proposal source must be a name; got {source!r}")
    if source in SAM_SOURCES and settings.sam_checkpoint is None:
        raise InvalidInput(
            f"proposal source {source!r} needs a SAM checkpoint, and none is configured on "
            "this server (SAMDSK_SAM_CHECKPOINT); use 'offline' or configure one"
        )
    try:
        check_source_settings(source, merged)
    except ConfigError as exc:
        raise InvalidInput(f"proposal settings: {exc}") from exc
