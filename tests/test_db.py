"""The database layer: migrations on both backends, SQLite pragmas."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect, text
from sqlmodel import SQLModel

from server.config import Settings
from server.db import make_engine, migrate


def test_migrating_twice_is_a_no_op(settings: Settings) -> None:
    migrate(settings)
    migrate(settings)
    engine = make_engine(settings)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == "0002"
    engine.dispose()


def test_migrations_create_every_table_of_the_models(settings: Settings) -> None:
    engine = make_engine(settings)
    tables = set(inspect(engine).get_table_names())
    engine.dispose()
    assert set(SQLModel.metadata.tables) <= tables


def test_sqlite_runs_in_wal_mode_with_foreign_keys(settings: Settings) -> None:
    if not settings.is_sqlite:
        pytest.skip("a SQLite setting")
    engine = make_engine(settings)
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
    engine.dispose()
