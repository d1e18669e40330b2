"""SQL persistence of the stream (SQLAlchemy 2 Core, Alembic migrations).

The worker puts `items` on a `writer.StorageWriter`; the API and the operator commands
call `operations`, `redrive` and `audit`; `migrate.upgrade` creates the schema. Nothing
is re-exported here, so `cartwatch --help` imports no database code. `models/` and
`alerts/` never import this package.
"""
