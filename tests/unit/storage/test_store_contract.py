"""The MetadataStore contract on every backend (the ``store`` fixture in conftest.py)."""

from __future__ import annotations

from aimaas.testing import StoreContract


class TestStoreContract(StoreContract):
    pass
