"""Keep SDK unit tests away from the developer's own environment and login file."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _isolated_client_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in ("AIMAAS_URL", "AIMAAS_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    config = tmp_path / "client" / "config.json"
    monkeypatch.setenv("AIMAAS_CONFIG", str(config))
    return config
