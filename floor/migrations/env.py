"""Alembic environment: migrates the database named by the app's configuration."""
from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from floor.db import make_engine
from floor.models import metadata

config = context.config


def _migrate(connection: Connection) -> None:
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:
        # A batch migration copies a table others refer to into a new one and drops the old:
        # SQLite's procedure for that runs with foreign keys off (set outside a transaction,
        # so on the driver's connection) and checks them all once done.
        connection.connection.driver_connection.execute("PRAGMA foreign_keys=OFF")
    try:
        context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
        if sqlite:
            broken = connection.exec_driver_sql("PRAGMA foreign_key_check").first()
            connection.rollback()
            if broken is not None:
                raise RuntimeError(f"foreign key check failed after migrating: {tuple(broken)}")
    finally:
        if sqlite:
            connection.connection.driver_connection.execute("PRAGMA foreign_keys=ON")


def run_migrations_online() -> None:
    connectable = config.attributes.get("connection")
    if connectable is not None:
        _migrate(connectable)
        return
    engine = make_engine(config.get_main_option("sqlalchemy.url"))
    with engine.connect() as connection:
        _migrate(connection)
    engine.dispose()


if context.is_offline_mode():
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=metadata,
                      literal_binds=True, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    run_migrations_online()
