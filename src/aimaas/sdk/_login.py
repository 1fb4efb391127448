"""Where a client finds its server and key: arguments, then the environment, then ``aimaas login``'s file."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from aimaas.config import ClientSettings
from aimaas.errors import InvalidInput

__all__ = ["DEFAULT_URL", "LoginConfig", "load_login_config", "resolve_connection", "save_login_config"]

DEFAULT_URL = "http://127.0.0.1:8000"


@dataclass(frozen=True)
class LoginConfig:
    """The server URL and API key saved by ``aimaas login``."""

    url: str
    api_key: str


def normalize_url(url: str) -> str:
    """``localhost:8000/`` → ``http://localhost:8000``: add a scheme when missing, drop trailing slashes."""
    url = url.strip()
    if "://" not in url:
        url = f"http://{url}"
    return url.rstrip("/")


def load_login_config(path: str | os.PathLike[str]) -> LoginConfig | None:
    """Read the login file; ``None`` when there is none. A damaged file raises :class:`InvalidInput`."""
    file = Path(path)
    try:
        raw = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise InvalidInput(f"cannot read the login file {file}: {exc}", param="config") from exc
    try:
        data = json.loads(raw)
        return LoginConfig(url=normalize_url(str(data["url"])), api_key=str(data["api_key"]))
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidInput(
            f"the login file {file} is damaged ({exc}); run `aimaas login` again or delete it",
            param="config",
        ) from exc


def save_login_config(path: str | os.PathLike[str], config: LoginConfig) -> Path:
    """Write the login file atomically with mode 0600; a folder it creates gets mode 0700."""
    file = Path(path).expanduser()
    missing = [p for p in [file.parent, *file.parent.parents] if not p.exists()]
    file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    for folder in missing:
        os.chmod(folder, 0o700)
    payload = json.dumps({"url": normalize_url(config.url), "api_key": config.api_key}, indent=2) + "\n"
    fd, tmp = tempfile.mkstemp(dir=file.parent, prefix=f".{file.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, file)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return file


def resolve_connection(url: str | None, api_key: str | None) -> tuple[str, str | None]:
    """The URL and key a client uses: arguments win over ``AIMAAS_URL``/``AIMAAS_API_KEY``, which win over
    the login file. The login file's key is only sent to the server it was saved for."""
    if url and api_key:
        return normalize_url(url), api_key
    env = ClientSettings()
    resolved = url or env.url
    key = api_key or env.api_key
    if resolved and key:
        return normalize_url(resolved), key
    login = load_login_config(env.config)
    if login is not None:
        if resolved is None:
            resolved = login.url
        if key is None and normalize_url(resolved) == login.url:
            key = login.api_key
    return normalize_url(resolved or DEFAULT_URL), key
