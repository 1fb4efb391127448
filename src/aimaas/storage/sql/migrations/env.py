"""Alembic environment for aimaas: online only, on the connection that ``aimaas.storage.sql.migrate`` gives.

There is no alembic.ini; :func:`aimaas.storage.sql.migrate.alembic_config` builds the configuration in
code and passes the open connection (already inside the migration transaction and lock) as
``config.attributes["connection"]``.
"""

from __future__ import annotations

from alembic import context

from aimaas.storage.sql.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None or context.is_offline_mode():
    raise RuntimeError(
        "aimaas migrations run online through aimaas.storage.sql.migrate.upgrade(engine); "
        "there is no alembic.ini and no offline (--sql) mode"
    )

context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
