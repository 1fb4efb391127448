"""Programmatic Alembic: bring a database to the head revision when a store opens.

* No alembic.ini: :func:`alembic_config` builds the configuration in code and points it at the
  migrations shipped as package data next to this module.
* Never downgrades: a database at a revision this code does not know (written by a newer aimaas)
  raises :class:`~aimaas.errors.SchemaTooNew`.
* Safe when several processes start at once on a fresh database: the check and the upgrade run in one
  transaction that holds the migration lock first: ``BEGIN IMMEDIATE`` on SQLite (others wait up to the
  busy timeout), a transaction-scoped advisory lock on PostgreSQL (keyed by the current schema). The
  second process then finds the database at head and does nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from aimaas.errors import SchemaTooNew
from aimaas.storage.sql.engine import is_postgres, session_scope

__all__ = [
    "MIGRATIONS_DIR",
    "MigrationResult",
    "alembic_config",
    "current_revision",
    "head_revision",
    "upgrade",
]

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# First key of the two-key advisory lock; the second is a hash of the schema name.
_ADVISORY_LOCK_KEY = 0x41494D41  # "AIMA"


@dataclass(frozen=True, slots=True)
class MigrationResult:
    """What :func:`upgrade` found and left: ``before`` is None for a fresh database."""

    before: str | None
    after: str

    @property
    def changed(self) -> bool:
        return self.before != self.after


def alembic_config(connection: Connection | None = None) -> Config:
    """The alembic.ini equivalent: script location only; the connection travels in ``attributes``."""
    config = Config()
    config.set_main_option("script_location", MIGRATIONS_DIR.as_posix().replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:  # pragma: no cover - the package always ships migrations
        raise RuntimeError(f"no migrations found in {MIGRATIONS_DIR}")
    return head


def current_revision(connection: Connection) -> str | None:
    heads = MigrationContext.configure(connection).get_current_heads()
    return heads[0] if heads else None


def _check_known(connection: Connection, script: ScriptDirectory) -> str | None:
    known = {rev.revision for rev in script.walk_revisions()}
    heads = MigrationContext.configure(connection).get_current_heads()
    head = script.get_current_head()
    for rev in heads:
        if rev not in known:
            raise SchemaTooNew(
                f"database schema revision {rev} is newer than this aimaas knows (head {head}); "
                "upgrade aimaas or point AIMAAS_DATABASE_URL at another database"
            )
    return heads[0] if heads else None


def upgrade(engine: Engine) -> MigrationResult:
    """Upgrade the database behind ``engine`` to head (a no-op when it is there already)."""
    script = ScriptDirectory.from_config(alembic_config())
    with session_scope(engine, write=True) as conn:
        if is_postgres(engine):
            conn.execute(
                text("SELECT pg_advisory_xact_lock(CAST(:key AS integer), hashtext(current_schema()))"),
                {"key": _ADVISORY_LOCK_KEY},
            )
        before = _check_known(conn, script)
        head = script.get_current_head()
        assert head is not None
        if before != head:
            command.upgrade(alembic_config(conn), "head")
        return MigrationResult(before=before, after=head)
