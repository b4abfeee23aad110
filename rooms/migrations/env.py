"""Alembic environment of the room store.

Run from the application through :func:`rooms.db.upgrade` (the engine comes in
``config.attributes["engine"]``), or from the command line with
``alembic -c rooms/migrations/alembic.ini ...`` (the URL comes from ``GATEWAY_DATABASE_URL``).
"""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import Engine
from sqlmodel import SQLModel

import rooms.models  # noqa: F401  (registers the tables)
from rooms.db import create_engine_for

config = context.config
target_metadata = SQLModel.metadata


def _engine() -> Engine:
    engine = config.attributes.get("engine")
    if engine is not None:
        return engine
    url = os.environ.get("GATEWAY_DATABASE_URL") or config.get_main_option("sqlalchemy.url")
    return create_engine_for(url or "sqlite:///gateway.db")


def run_migrations_offline() -> None:
    url = os.environ.get("GATEWAY_DATABASE_URL") or config.get_main_option("sqlalchemy.url")
    context.configure(url=url, target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = _engine()
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
