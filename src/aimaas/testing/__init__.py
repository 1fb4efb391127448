"""Test support shipped with the package: contract suites every backend must pass.

The suites import pytest; import them only from tests.
"""

from __future__ import annotations

from aimaas.testing.artifact_contract import ArtifactContract
from aimaas.testing.executor_contract import ExecutorContract
from aimaas.testing.store_contract import StoreContract

__all__ = ["ArtifactContract", "ExecutorContract", "StoreContract"]
