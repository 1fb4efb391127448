"""Settings: the only place that reads environment variables (prefix ``AIMAAS_``).

Build one :class:`Settings` at start-up and pass it down; nothing reads the environment at import time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings"]

MiB = 1024 * 1024


class Settings(BaseSettings):
    """Server configuration. Every field can be set as ``AIMAAS_<FIELD>`` in the environment."""

    model_config = SettingsConfigDict(env_prefix="AIMAAS_", extra="ignore")

    home: Path = Field(default_factory=lambda: Path.home() / ".aimaas")
    database_url: str | None = None
    storage_url: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    max_upload_bytes: int = 2 * 1024 * MiB
    # Archives: refuse more entries, more expanded bytes or a higher compression ratio than these.
    max_archive_entries: int = 100_000
    max_archive_bytes: int = 4 * 1024 * MiB
    max_archive_ratio: float = 200.0
    sqlite_busy_timeout_ms: int = 30_000
    log_level: str = "info"
    redis_url: str | None = None
    # Serve /docs and /openapi.json without a key (closed by default).
    public_docs: bool = False
    # Jobs: where they run ("local": worker processes; "inline": in the server, for tests), how many run at
    # once, per tenant, when another server's job counts as orphaned, and which packages hold entrypoints
    # (a JSON list in the environment; test-only job modules are never allowed by default).
    executor: Literal["local", "inline"] = "local"
    workers: int = Field(default=2, ge=1)
    jobs_per_tenant: int | None = Field(default=2, ge=1)
    heartbeat_stale_s: float = Field(default=10.0, gt=0)
    job_entrypoints: list[str] = Field(default_factory=lambda: ["aimaas.training", "aimaas.services.training.job"])
    #: Seconds a successful authentication is remembered per server (a key revoked on another server keeps
    #: working here for at most this long; one revoked here stops at once). 0 disables the cache.
    auth_cache_s: float = Field(default=2.0, ge=0)
    #: Serving: how long a request waits for a replica of a scaled-to-zero or loading endpoint (then 503).
    cold_start_timeout_s: float = Field(default=60.0, gt=0)
    #: Serving: total memory the loaded models may take before idle ones are unloaded (None: no limit).
    serving_memory_bytes: int | None = Field(default=None, ge=1)
    #: Modules the local executor's fork server imports once at start, so a job's worker starts with them loaded
    #: (a training job then reaches its first trial in well under a second instead of importing for seconds).
    worker_preload: list[str] = Field(default_factory=lambda: [
        "aimaas.services.training.job", "aimaas.training.tuning", "aimaas.training.sklearn_trainers",
        "aimaas.training.lightgbm_trainer", "optuna", "sklearn.linear_model", "sklearn.ensemble",
        "sklearn.model_selection", "sklearn.pipeline", "sklearn.compose", "sklearn.preprocessing", "sklearn.impute",
        "sklearn.metrics", "sklearn.inspection", "lightgbm", "skl2onnx", "onnxmltools", "onnx", "onnxruntime",
    ])

    @field_validator("home", mode="before")
    @classmethod
    def _expand_home(cls, value: object) -> object:
        if isinstance(value, str):
            return Path(value).expanduser()
        return value

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.home / 'aimaas.db').as_posix()}"

    @property
    def resolved_storage_url(self) -> str:
        return self.storage_url or (self.home / "artifacts").as_posix()

    @property
    def staging_dir(self) -> Path:
        """Local scratch space for uploads being received and checked (never served)."""
        return self.home / "staging"

    @property
    def checkpoint_dir(self) -> Path:
        """One folder per job (its id), kept after the job so a new job can ``resume_from`` it."""
        return self.home / "checkpoints"

    @property
    def admin_key_file(self) -> Path:
        return self.home / "admin.key"


class ClientSettings(BaseSettings):
    """What the CLI and SDK read from the environment: ``AIMAAS_URL``, ``AIMAAS_API_KEY``, ``AIMAAS_CONFIG``.

    Values given on the command line win over these, and these win over the file written by
    ``aimaas login`` (``config_file``, default ``~/.config/aimaas/config.json``, mode 0600).
    """

    model_config = SettingsConfigDict(env_prefix="AIMAAS_", extra="ignore")

    url: str | None = None
    api_key: str | None = None
    config: Path = Field(default_factory=lambda: Path.home() / ".config" / "aimaas" / "config.json")


__all__.append("ClientSettings")
