"""Service settings: one pydantic-settings class, every field overridable by ``SAMDSK_<NAME>``.

The defaults describe the embedded deployment: a SQLite file, local file storage and a
filesystem Celery broker, all under one data folder, so nothing but Python is needed. Outside
``development`` the class refuses the built-in secret key.
"""

from __future__ import annotations

from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Self

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEVELOPMENT_SECRET_KEY = "development-only-secret-key-change-me"


class Environment(StrEnum):
    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"


class Settings(BaseSettings):
    """Every ``SAMDSK_`` setting; README's configuration table is generated from these fields."""

    model_config = SettingsConfigDict(env_prefix="SAMDSK_", env_file=".env", extra="ignore")

    environment: Environment = Field(
        Environment.DEVELOPMENT, description="development, test or production."
    )
    secret_key: str = Field(
        DEVELOPMENT_SECRET_KEY,
        description="Signs session tokens. Must be changed outside development.",
    )
    data_dir: Path = Field(
        Path("var"), description="Folder holding the embedded database, files and broker queue."
    )
    database_url: str = Field(
        "",
        description="SQLAlchemy URL; empty means SQLite at DATA_DIR/samdsk.db. "
        "Production: postgresql+psycopg://user:pass@host/db.",
    )
    broker_url: str = Field(
        "",
        description="Celery broker; empty means the filesystem broker under DATA_DIR/broker. "
        "Production: redis://host:6379/0.",
    )
    storage_url: str = Field(
        "",
        description="Where files go; empty means DATA_DIR/files. Also file:///path or "
        "s3://bucket/prefix.",
    )
    s3_endpoint_url: str | None = Field(
        None, description="Endpoint of an S3-compatible store (MinIO, Ceph); None means AWS."
    )
    s3_region: str | None = Field(None, description="Region of the S3 bucket.")
    host: str = Field("127.0.0.1", description="Address the API listens on.")
    forwarded_allow_ips: str | None = Field(
        None,
        description="Reverse proxies (addresses, comma-separated) whose X-Forwarded-For names "
        "the client; unset: none is trusted, and each client is known by its own address.",
    )
    port: int = Field(8000, description="Port the API listens on.")
    max_upload_bytes: int = Field(
        64 * 1024 * 1024, description="Largest accepted image or mask file, in bytes."
    )
    max_image_pixels: int = Field(
        64_000_000, description="Largest accepted width x height (decompression-bomb guard)."
    )
    max_import_bytes: int = Field(
        2 * 1024 * 1024 * 1024,
        description="Largest accepted import zip, and largest total size of its files once "
        "unpacked (zip-bomb guard).",
    )
    max_import_files: int = Field(
        20_000, description="Most entries (files and folders) an import zip may hold."
    )
    job_lease_seconds: int = Field(
        120,
        description="How long a worker owns a job without a heartbeat before another "
        "worker may take it over.",
    )
    job_sweep_seconds: int = Field(
        30,
        description="How often each worker re-enqueues jobs that are queued or whose "
        "lease expired.",
    )
    sam_checkpoint: Path | None = Field(
        None,
        description="Local SAM checkpoint (.pth). Unset: classical offline proposals are used.",
    )
    sam_model: str = Field("vit_b", description="SAM model type: vit_b, vit_l or vit_h.")
    encoder_weights: Path | None = Field(
        None, description="Local ImageNet encoder weights for the segmentation model."
    )
    session_hours: float = Field(12.0, description="Lifetime of a browser login session.")
    login_window_seconds: int = Field(900, description="Window in which failed logins are counted.")
    login_max_failures_per_account: int = Field(
        5,
        description="Failed logins of one account from one address within the window before "
        "that address is refused for it; one stranger's guesses never lock its owner out.",
    )
    login_max_failures_per_account_everywhere: int = Field(
        100,
        description="Failed logins of one account from all addresses together within the "
        "window before it is paused everywhere (guessing spread over many addresses; a site "
        "administrator unlocks it).",
    )
    login_max_failures_per_address: int = Field(
        30, description="Failed logins from one address within the window before it is paused."
    )
    admin_username: str = Field("admin", description="First superuser, created at first start.")
    admin_password: str | None = Field(
        None,
        description="Password of the first superuser; unset in development: a random one is "
        "generated and written to DATA_DIR/initial-admin-password.txt.",
    )
    queue_name: str = Field("samdsk", description="Celery queue the API sends jobs to.")
    worker_concurrency: int = Field(
        2, description="Processes per worker: one can train while another makes proposals."
    )

    @field_validator("sam_checkpoint", "encoder_weights", mode="before")
    @classmethod
    def _empty_path_is_unset(cls, value: object) -> object:
        # Compose files and shells pass unset paths as empty strings.
        return None if value == "" else value

    @model_validator(mode="after")
    def _refuse_default_secret(self) -> Self:
        if self.environment is Environment.DEVELOPMENT:
            return self
        if self.secret_key == DEVELOPMENT_SECRET_KEY:
            raise ValueError(
                "SAMDSK_SECRET_KEY is the built-in development key; set a secret of your own "
                f"when SAMDSK_ENVIRONMENT is {self.environment.value}"
            )
        if len(self.secret_key) < 32:
            raise ValueError("SAMDSK_SECRET_KEY must be at least 32 characters")
        return self

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'samdsk.db').resolve()}"

    @property
    def resolved_storage_url(self) -> str:
        return self.storage_url or f"file://{(self.data_dir / 'files').resolve()}"

    @property
    def resolved_broker_url(self) -> str:
        return self.broker_url or "filesystem://"

    @property
    def broker_folder(self) -> Path:
        """Queue folder of the filesystem broker (used only when BROKER_URL is empty)."""
        return (self.data_dir / "broker").resolve()

    @property
    def uses_embedded_broker(self) -> bool:
        return not self.broker_url


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
