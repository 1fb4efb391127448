"""Engines and transactions: the one place SQL driver errors are turned into :mod:`aimaas.errors`.

SQLite is configured for many concurrent writers on one machine: WAL journal (readers never block
writers), ``busy_timeout`` (a writer waits for the lock instead of failing), ``foreign_keys=ON``, and
write transactions that start with ``BEGIN IMMEDIATE`` so the write lock is taken up front. (pysqlite
would otherwise begin lazily and upgrade a read lock later, which fails at once with "database is
locked" instead of waiting; we use SQLAlchemy's documented recipe: ``isolation_level=None`` on the
DBAPI connection and our own BEGIN from the ``begin`` event.)
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event, exc
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.pool import StaticPool

from aimaas.errors import AimaasError, Conflict, InvalidInput, StorageError

__all__ = ["create_store_engine", "is_postgres", "is_sqlite", "session_scope"]

_BEGIN_OPTION = "aimaas_sqlite_begin"
# In-memory SQLite shares one connection between threads, so its transactions are serialised here.
_SHARED_CONNECTION_LOCKS: weakref.WeakKeyDictionary[Engine, threading.RLock] = weakref.WeakKeyDictionary()

# Unique constraints / indexes → what a user should be told (PostgreSQL names them, SQLite names columns).
_CONFLICTS: dict[str, str] = {
    "tenants_name": "a tenant with this name already exists; choose another name",
    "tenants.name": "a tenant with this name already exists; choose another name",
    "api_keys_key_hash": "an API key with this hash already exists; generate a new key",
    "api_keys.key_hash": "an API key with this hash already exists; generate a new key",
    "datasets_tenant_id_name": "a dataset with this name already exists",
    "datasets.tenant_id, datasets.name": "a dataset with this name already exists",
    "registered_models_tenant_id_name": "a model with this name already exists",
    "registered_models.tenant_id, registered_models.name": "a model with this name already exists",
    "model_versions_model_id_version": "this model version number is already taken; retry",
    "model_versions.model_id, model_versions.version": "this model version number is already taken; retry",
}


def _normalise_url(url: str) -> URL:
    try:
        parsed = make_url(url)
    except exc.ArgumentError:
        raise InvalidInput(
            "the database URL could not be parsed; expected sqlite:///PATH or postgresql+psycopg://USER@HOST/DB",
            param="database_url",
        ) from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def is_postgres(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


def create_store_engine(url: str, *, busy_timeout_ms: int = 30_000) -> Engine:
    """An Engine for ``url`` (``sqlite:///...`` or ``postgresql+psycopg://...``) set up as described above."""
    parsed = _normalise_url(url)
    backend = parsed.get_backend_name()
    try:
        if backend == "sqlite":
            return _sqlite_engine(parsed, busy_timeout_ms)
        if backend == "postgresql":
            # Fail fast (not after the OS's TCP timeout) when the server is unreachable.
            connect_args = {} if "connect_timeout" in parsed.query else {"connect_timeout": 10}
            return sa.create_engine(parsed, pool_pre_ping=True, connect_args=connect_args)
    except exc.NoSuchModuleError:
        raise StorageError(
            f"no driver for {parsed.drivername!r}; for PostgreSQL install it with `pip install aimaas[postgres]`"
        ) from None
    except ImportError as error:
        raise StorageError(
            f"the database driver for {backend} is missing ({error.name}); "
            "for PostgreSQL install it with `pip install aimaas[postgres]`"
        ) from None
    raise InvalidInput(
        f"unsupported database backend {backend!r}; use sqlite:///PATH or postgresql+psycopg://...",
        param="database_url",
    )


def _sqlite_engine(url: URL, busy_timeout_ms: int) -> Engine:
    in_memory = url.database in (None, "", ":memory:") or "mode=memory" in str(url)
    connect_args: dict[str, Any] = {"check_same_thread": False, "timeout": busy_timeout_ms / 1000}
    kwargs: dict[str, Any] = {"connect_args": connect_args}
    if in_memory:  # one shared connection, or every checkout would see an empty database
        kwargs["poolclass"] = StaticPool
    engine = sa.create_engine(url, **kwargs)
    if in_memory:
        _SHARED_CONNECTION_LOCKS[engine] = threading.RLock()

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves (see module docstring)
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            cursor.execute("PRAGMA foreign_keys = ON")
            if not in_memory and cursor.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                cursor.execute("PRAGMA journal_mode = WAL")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        mode = conn.get_execution_options().get(_BEGIN_OPTION, "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")

    return engine


@contextmanager
def session_scope(engine: Engine, *, write: bool = False) -> Iterator[Connection]:
    """One transaction on a fresh connection: commit on success, roll back on any exception.

    ``write=True`` makes SQLite take the write lock at BEGIN (``BEGIN IMMEDIATE``), which serialises
    writers and lets them wait ``busy_timeout`` instead of failing. Errors are translated:
    uniqueness/foreign-key violations → :class:`Conflict`, any other driver or SQLAlchemy error →
    :class:`StorageError`; :class:`AimaasError` raised by the body passes through unchanged.
    """
    lock = _SHARED_CONNECTION_LOCKS.get(engine)
    if lock is not None:
        lock.acquire()
    try:
        with engine.connect() as conn:
            if write:
                conn.execution_options(**{_BEGIN_OPTION: "IMMEDIATE"})
            with conn.begin():
                yield conn
    except AimaasError:
        raise
    except exc.IntegrityError as error:
        raise Conflict(_conflict_message(error)) from None
    except (exc.SQLAlchemyError, exc.DBAPIError) as error:
        raise StorageError(storage_error_message(error)) from error
    finally:
        if lock is not None:
            lock.release()


def _conflict_message(error: exc.IntegrityError) -> str:
    orig = error.orig
    diag = getattr(orig, "diag", None)
    constraint = getattr(diag, "constraint_name", None) or ""
    text = str(orig)
    for needle, message in _CONFLICTS.items():
        if (constraint and constraint.endswith(needle)) or needle in text:
            return message
    if "FOREIGN KEY" in text.upper():
        return "the record refers to something that does not exist (or no longer exists)"
    return "the record conflicts with an existing one"


def storage_error_message(error: BaseException) -> str:
    """A short description of a driver error, without SQL text or bound parameters."""
    orig = getattr(error, "orig", None) or error
    first_line = str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__
    if "database is locked" in first_line or "database is busy" in first_line:
        return (
            "the SQLite database stayed locked by another writer for longer than the busy timeout "
            "(AIMAAS_SQLITE_BUSY_TIMEOUT_MS); retry, or move to PostgreSQL for heavy concurrent writes"
        )
    return f"database error ({type(orig).__name__}): {first_line}"
