"""Alembic environment of the results store: always run on a connection the service passes.

``labral.serve.store.database.migrate`` calls ``alembic.command.upgrade`` with the connection in
``config.attributes["connection"]``; nothing here reads a URL or configures logging.
"""

from alembic import context

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only reached from the alembic command line
    raise SystemExit(
        "run migrations through labral.serve.store.database.migrate (labral serve does)"
    )
context.configure(connection=connection, target_metadata=None, compare_type=True)
with context.begin_transaction():
    context.run_migrations()
