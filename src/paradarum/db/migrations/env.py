"""Alembic environment: uses the connection handed over by ``paradarum.db.migrate``,
or builds one from ``sqlalchemy.url`` when run through the ``alembic`` command."""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import create_engine

from paradarum.db.tables import metadata

config = context.config


def run() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(
            connection=connection,
            target_metadata=metadata,
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            context.run_migrations()
        return
    url = config.get_main_option("sqlalchemy.url") or os.environ.get("PARADARUM_DATABASE_URL")
    if not url:
        raise RuntimeError("no database URL: set sqlalchemy.url or PARADARUM_DATABASE_URL")
    engine = create_engine(url)
    with engine.connect() as conn:
        context.configure(
            connection=conn,
            target_metadata=metadata,
            render_as_batch=conn.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    raise RuntimeError("offline migrations are not supported")
run()
