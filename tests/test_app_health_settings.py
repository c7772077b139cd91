"""Health reports each dependency and the configured weights; settings refuse unsafe secrets."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from app.main import create_app
from app.settings import DEVELOPMENT_SECRET_KEY, Settings
from tests.conftest import TEST_SECRET


def test_health_ok_names_backends_and_weights(client: TestClient) -> None:
    response = client.get("/api/v1/health")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"]["ok"] and body["database"]["detail"] in ("sqlite", "postgresql")
    assert body["broker"]["ok"] and "filesystem" in body["broker"]["detail"]
    assert body["storage"]["ok"] and body["storage"]["detail"].startswith("local:")
    assert body["proposal_source"] == "offline"
    assert "no SAM checkpoint" in body["proposal_weights"]
    assert "random initialisation" in body["segmentation_weights"]


def test_health_names_a_configured_checkpoint(settings: Settings, tmp_path: Path) -> None:
    settings.sam_checkpoint = tmp_path / "sam_vit_h.pth"
    settings.sam_model = "vit_h"
    with TestClient(create_app(settings)) as client:
        body = client.get("/api/v1/health").json()
    assert body["proposal_source"] == "sam"
    assert "vit_h" in body["proposal_weights"] and "FILE NOT FOUND" in body["proposal_weights"]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_health_degraded_when_database_and_broker_unreachable(
    settings: Settings, tmp_path: Path
) -> None:
    settings.database_url = "postgresql+psycopg://nobody@127.0.0.1:1/none"
    settings.broker_url = "redis://127.0.0.1:1/0"
    with TestClient(create_app(settings)) as client:
        response = client.get("/api/v1/health")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "degraded"
    assert not body["database"]["ok"] and not body["broker"]["ok"] and body["storage"]["ok"]


def test_settings_refuse_default_secret_outside_development(tmp_path: Path) -> None:
    for environment in ("production", "test"):
        with pytest.raises(ValidationError, match="SAMDSK_SECRET_KEY"):
            Settings(environment=environment, secret_key=DEVELOPMENT_SECRET_KEY)
    with pytest.raises(ValidationError, match="32 characters"):
        Settings(environment="production", secret_key="short")
    assert Settings(environment="production", secret_key=TEST_SECRET).secret_key == TEST_SECRET
    assert Settings(environment="development").secret_key == DEVELOPMENT_SECRET_KEY


def test_embedded_defaults_live_under_one_data_folder(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "samdsk")
    assert settings.resolved_database_url == f"sqlite:///{tmp_path / 'samdsk' / 'samdsk.db'}"
    assert settings.resolved_storage_url == f"file://{tmp_path / 'samdsk' / 'files'}"
    assert (
        settings.uses_embedded_broker and settings.broker_folder == tmp_path / "samdsk" / "broker"
    )


def test_settings_read_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAMDSK_DATABASE_URL", "postgresql+psycopg://u@db/samdsk")
    monkeypatch.setenv("SAMDSK_BROKER_URL", "redis://redis:6379/0")
    settings = Settings()
    assert settings.resolved_database_url == "postgresql+psycopg://u@db/samdsk"
    assert not settings.uses_embedded_broker
