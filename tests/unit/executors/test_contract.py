"""The executor contract on every backend: inline (in the caller's thread) and local (worker processes)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from aimaas.executors import Executor, InlineExecutor, LocalExecutor
from aimaas.testing.executor_contract import ExecutorContract


class TestInlineExecutor(ExecutorContract):
    separate_process = False

    @pytest.fixture
    def executor(self, tmp_path: Path) -> Iterator[Executor]:
        ex = InlineExecutor(checkpoint_root=tmp_path / "checkpoints")
        yield ex
        ex.close()


class TestLocalExecutor(ExecutorContract):
    @pytest.fixture
    def executor(self, tmp_path: Path) -> Iterator[Executor]:
        ex = LocalExecutor(
            workers=2, checkpoint_root=tmp_path / "checkpoints", heartbeat_s=0.5, grace_s=1.0, kill_after_s=1.0
        )
        yield ex
        ex.close()
