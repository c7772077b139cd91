"""The method library stays apart from the service, and its public API is pinned."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import samdsk
import samdsk.knowledge

REPO_ROOT = Path(__file__).resolve().parents[1]
SERVICE_PACKAGES = ("fastapi", "sqlalchemy", "celery", "app", "workers")

PUBLIC_API = [
    "PRESETS",
    "Candidate",
    "CheckpointError",
    "ClassKnowledge",
    "ConfigError",
    "Match",
    "ModelConfig",
    "MultiClassMatch",
    "ProposalCache",
    "ProposalSource",
    "Proposals",
    "RoundConfig",
    "RoundResult",
    "SamdskError",
    "ShapeError",
    "TrainResult",
    "TrainingSample",
    "build_proposal_source",
    "default_proposal_source",
    "dice",
    "get_preset",
    "hash_array",
    "iou",
    "load_checkpoint",
    "machine_labels",
    "match_classes",
    "match_proposals",
    "predict_probabilities",
    "rank_matches",
    "read_image",
    "read_mask",
    "run_round",
    "run_samdsk",
    "save_checkpoint",
    "select_for_labeling",
    "spearman",
    "summarize",
    "train_model",
]

IMPORT_EVERYTHING = """
import importlib, json, pkgutil, sys
import samdsk
names = [info.name for info in pkgutil.walk_packages(samdsk.__path__, "samdsk.")]
for name in names:
    importlib.import_module(name)
for name in samdsk.__all__:
    getattr(samdsk, name)
print(json.dumps({"walked": names, "loaded": sorted(sys.modules)}))
"""


def _run(code: str) -> dict[str, list[str]]:
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, list[str]] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _service_modules(loaded: list[str]) -> list[str]:
    return [name for name in loaded if name.split(".")[0] in SERVICE_PACKAGES]


def test_importing_every_samdsk_module_loads_nothing_of_the_service() -> None:
    result = _run(IMPORT_EVERYTHING)
    # The walk really reached the heavy modules, so the check below covers them.
    for module in ("samdsk.rounds", "samdsk.experiment", "samdsk.cli", "samdsk.model.train"):
        assert module in result["walked"]
    assert "torch" in result["loaded"]
    assert _service_modules(result["loaded"]) == []


def test_import_samdsk_and_its_settings_classes_do_not_load_torch() -> None:
    code = (
        "import json, sys, samdsk\n"
        "samdsk.ClassKnowledge(); samdsk.ModelConfig(); samdsk.ConfigError\n"
        'print(json.dumps({"loaded": sorted(sys.modules)}))\n'
    )
    loaded = _run(code)["loaded"]
    assert "torch" not in loaded
    assert _service_modules(loaded) == []


def test_public_api_is_pinned_and_every_name_resolves() -> None:
    assert samdsk.__all__ == PUBLIC_API
    for name in PUBLIC_API:
        assert getattr(samdsk, name) is not None
    assert samdsk.run_round.__module__ == "samdsk.rounds"
    assert samdsk.ClassKnowledge is samdsk.knowledge.ClassKnowledge


def test_unknown_attribute_raises_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no_such_name"):
        samdsk.no_such_name  # noqa: B018
