"""Alembic environment: runs on the connection `cartwatch.streams.storage.migrate` hands over.

There is no alembic.ini: the caller builds the Config in code, so `cartwatch db upgrade`
works from an installed package, and the URL (a secret) never goes through a file.
"""

from __future__ import annotations

from alembic import context

from cartwatch.streams.storage.schema import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
