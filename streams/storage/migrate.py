"""`cartwatch db upgrade`: Alembic migrations driven from code (no alembic.ini)."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from pydantic import SecretStr
from sqlalchemy import Engine
from sqlalchemy.engine import URL

from cartwatch.streams.storage.engine import make_engine

SCRIPT_LOCATION = "cartwatch.streams.storage:migrations"


def alembic_config(engine: Engine) -> Config:
    """An Alembic config for the packaged migrations, bound to the engine."""
    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    config.attributes["engine"] = engine
    return config


def upgrade(url: str | SecretStr | URL | Engine, revision: str = "head") -> None:
    """Bring the database at `url` (or an engine) up to `revision`."""
    engine = url if isinstance(url, Engine) else make_engine(url)
    config = alembic_config(engine)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
    if engine is not url:
        engine.dispose()


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at (None when never migrated)."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()
