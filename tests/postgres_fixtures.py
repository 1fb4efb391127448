"""PostgreSQL fixtures shared by store and server tests: a fresh schema per test (``postgres_url``)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy.engine import make_url

DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def _server_url() -> str:
    return os.environ.get("AIMAAS_TEST_POSTGRES_URL") or DEFAULT_POSTGRES_URL


def _libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def _postgres_server() -> str:
    """The server URL once PostgreSQL answers; otherwise skip (or fail under AIMAAS_REQUIRE_SERVICES=1)."""
    url = _server_url()
    try:
        with psycopg.connect(_libpq(url), connect_timeout=5) as conn:
            conn.execute("SELECT 1")
        return url
    except Exception as error:  # noqa: BLE001 - any failure to reach the server is reported
        detail = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    where = make_url(url).render_as_string(hide_password=True)
    reason = f"PostgreSQL is not reachable at {where} ({detail}); start it or set AIMAAS_TEST_POSTGRES_URL"
    if os.environ.get("AIMAAS_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{reason} (AIMAAS_REQUIRE_SERVICES=1 forbids skipping)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture
def postgres_url(_postgres_server: str) -> Iterator[str]:
    """A SQLAlchemy URL whose connections use a fresh, empty schema, dropped after the test."""
    schema = f"aimaas_test_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(_libpq(_postgres_server), autocommit=True) as admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
    try:
        url = make_url(_postgres_server).update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False)
    finally:
        with psycopg.connect(_libpq(_postgres_server), autocommit=True) as admin:
            admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
