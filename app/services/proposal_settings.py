"""Proposal settings: checked where they are given, so a bad one fails its request (422)
instead of a round minutes later, and completed with what only the server may decide.

Which SAM weights, of which model type, on which device, with which embedding folder, is the
server's configuration (``SAMDSK_SAM_CHECKPOINT``, ``SAMDSK_SAM_MODEL``): a client that could
name a file path would make the workers read any file it likes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from app.errors import InvalidInput
from app.settings import Settings
from samdsk.errors import ConfigError
from samdsk.proposals.checks import check_proposal_settings as check_source_settings

SAM_SOURCES = ("sam", "sam_fast")
SERVER_ONLY_SETTINGS = ("checkpoint", "model_type", "device", "embedding_cache")

# The most a request may ask of a worker, per image of a round. The sources refuse what has no
# meaning (a work size under 32, a threshold of 5); these refuse what is well formed but would
# exhaust a worker's memory or never finish. An int limit is an integer setting; a float limit
# takes any finite number. Each is far above what the README, the benchmarks and docs/results
# use (the defaults; points_per_side 4 to 32, image_batch up to 8, superpixel_counts [100, 400]).
PROPOSAL_SETTING_LIMITS: dict[str, int | float] = {
    # offline: SAM's own input side; the work grows with its square (1.2 s an image at 512 px)
    "work_size": 1024,
    # each is a mask at the image's full size, kept per image and searched by the matching
    "max_proposals": 1000,
    # work-size masks held at once: 2000 at 1024 px are 2 GB
    "candidate_pool": 2000,
    # each adds a filled mask and its convex hull, both scored against a ring
    "hull_sources": 1000,
    # the Gaussian kernel is 8 sigma wide, and as slow; 16 px blurs a lesion's outline away
    "blur_sigma": 16.0,
    # Felzenszwalb's scale: far above the defaults (50 and 500), beyond which it only makes
    # fewer, larger segments
    "graph_scale": 100_000.0,
    # CIELAB colours are at most about 375 apart: a higher floor keeps no region
    "min_contrast": 400.0,
    # merge order by size alone long before this (the default is 1)
    "size_weight": 1000.0,
    # SAM: prompts per image grow with its square; 128 is 16 times the paper's 32 x 32
    "points_per_side": 128,
    # each prompt decoded holds a copy of the 256 x 64 x 64 image embedding: 4 GiB in float32
    "points_per_batch": 1024,
    # layer n adds 4^n crops, each encoded and prompted as the whole image is: 21 passes at 2
    # (SAM's own examples use 1)
    "crop_n_layers": 2,
    # images encoded at once, each with its encoder's activations on the GPU (default 4)
    "image_batch": 32,
}
# List settings: the most entries, and the most each entry may be (as above). Every entry is
# one more segmentation of every image, the bottom-up merge of SLIC cells the costliest step.
PROPOSAL_LIST_LIMITS: dict[str, tuple[int, int | float]] = {
    # 10,000 cells are 6 pixels each at the default work size
    "superpixel_counts": (8, 10_000),
    "coarse_scales": (8, 100_000.0),
}
# The fast engine picks its own prompt batch where none is given.
NULLABLE_SETTINGS = ("points_per_batch",)


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
    check_proposal_limits(merged)
    try:
        check_source_settings(source, merged)
    except ConfigError as exc:
        raise InvalidInput(f"proposal settings: {exc}") from exc


def check_proposal_limits(settings: Mapping[str, Any]) -> None:
    """InvalidInput for a setting of ``settings`` that is no finite number (an integer where
    the setting counts), or a list setting that is no such list, above its
    ``PROPOSAL_SETTING_LIMITS`` or ``PROPOSAL_LIST_LIMITS``. Checked before the sources' own
    checks, which compare without asking what they compare."""
    for name, limit in PROPOSAL_SETTING_LIMITS.items():
        if name in settings and not (name in NULLABLE_SETTINGS and settings[name] is None):
            _check_number(name, settings[name], limit)
    for name, (length, limit) in PROPOSAL_LIST_LIMITS.items():
        values = settings.get(name, [])
        if not isinstance(values, list | tuple) or len(values) > length:
            count = f"{len(values)} entries" if isinstance(values, list | tuple) else repr(values)
            raise InvalidInput(
                f"proposal setting {name} must be a list of at most {length} numbers; got {count}"
            )
        for value in values:
            _check_number(f"{name} entry", value, limit)


def _check_number(name: str, value: object, limit: int | float) -> None:
    """InvalidInput unless ``value`` is a number of ``limit``'s kind, finite, at most ``limit``
    (true and false are JSON's, not numbers)."""
    integer = isinstance(limit, int)
    kinds = (int,) if integer else (int, float)
    if (
        isinstance(value, bool)
        or not isinstance(value, kinds)
        or (isinstance(value, float) and not math.isfinite(value))
    ):
        kind = "an integer" if integer else "a finite number"
        raise InvalidInput(f"proposal setting {name} must be {kind}; got {value!r}")
    if value > limit:
        raise InvalidInput(f"proposal setting {name} must be at most {limit}; got {value}")
