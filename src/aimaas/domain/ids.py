"""Identifiers that sort by creation time, so they double as pagination cursors."""

from __future__ import annotations

import secrets
import time

__all__ = ["new_id"]


def new_id(prefix: str) -> str:
    """``<prefix>_<13 hex digits of ms since epoch><12 random hex digits>``: unique and time ordered."""
    return f"{prefix}_{time.time_ns() // 1_000_000:013x}{secrets.token_hex(6)}"
