"""Where the real data lies: ``../shared/data`` beside the checkout, or the folder that
``SAMDSK_SHARED_DATA`` names (a machine where it was staged elsewhere, such as a GPU check's).
Kept apart from conftest so that tests of the method alone import none of the web service."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("SAMDSK_SHARED_DATA") or REPO_ROOT.parent / "shared" / "data")


def shared_data(*parts: str) -> Path:
    """A path under the shared real data folder; skips the test if that folder is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real data not found at {path}")
    return path
