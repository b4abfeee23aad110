"""Engines, Alembic migrations and the admin token."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect
from sqlmodel import SQLModel

import rooms.models  # noqa: F401
from rooms.admin import AdminAuth, ensure_admin_token
from rooms.db import create_engine_for, current_revision, head_revision, normalise_url, upgrade


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = create_engine_for(database_url)
    yield engine
    engine.dispose()


def test_normalise_url() -> None:
    assert normalise_url("postgresql://u:p@h:5433/db") == "postgresql+psycopg://u:p@h:5433/db"
    assert normalise_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalise_url("postgresql+psycopg://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalise_url("sqlite:///gateway.db") == "sqlite:///gateway.db"


def test_in_memory_sqlite_works() -> None:
    engine = create_engine_for("sqlite://")
    upgrade(engine)
    assert current_revision(engine) == head_revision()
    engine.dispose()


def test_upgrade_creates_the_schema_at_head(engine: Engine) -> None:
    assert current_revision(engine) is None
    upgrade(engine)
    assert current_revision(engine) == head_revision() == "0003"
    tables = set(inspect(engine).get_table_names())
    assert {"rooms", "link_tokens", "allocated_numbers", "settings", "alembic_version"} <= tables
    upgrade(engine)  # idempotent
    assert current_revision(engine) == "0003"


def test_migrations_match_the_models(engine: Engine) -> None:
    upgrade(engine)
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        diff = compare_metadata(context, SQLModel.metadata)
    assert diff == []


def test_downgrade_and_upgrade_again(engine: Engine) -> None:
    from alembic import command

    from rooms.db import alembic_config

    upgrade(engine)
    command.downgrade(alembic_config(engine), "base")
    assert "rooms" not in inspect(engine).get_table_names()
    upgrade(engine)
    assert "rooms" in inspect(engine).get_table_names()


def test_admin_token_generated_once_then_reused(engine: Engine) -> None:
    upgrade(engine)
    token, auth = ensure_admin_token(engine, None)
    assert token is not None and len(token) >= 32
    assert auth.verify(token) and not auth.verify(token + "x") and not auth.verify("")
    again, auth2 = ensure_admin_token(engine, None)
    assert again is None
    assert auth2.verify(token)


def test_configured_admin_token_wins(engine: Engine) -> None:
    upgrade(engine)
    token, auth = ensure_admin_token(engine, "configured-token-123456")
    assert token is None
    assert auth == AdminAuth.for_token("configured-token-123456")
    # Nothing stored: a later start without configuration generates its own.
    generated, _ = ensure_admin_token(engine, None)
    assert generated is not None and generated != "configured-token-123456"


def test_a_sqlite_file_runs_in_wal_mode_and_syncs_each_commit(tmp_path: Path) -> None:
    """One fsync of the log per commit (durable across a power cut), reads not blocked by a
    write; an in-memory database keeps its default journal."""
    engine = create_engine_for(f"sqlite:///{tmp_path / 'wal.db'}")
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    finally:
        engine.dispose()
    memory = create_engine_for("sqlite://")
    with memory.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "memory"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    memory.dispose()
