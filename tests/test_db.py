"""The database layer: migrations on both backends, SQLite pragmas."""

from __future__ import annotations

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlmodel import SQLModel

from server.config import Settings
from server.db import alembic_config, make_engine, migrate


def test_migrating_twice_is_a_no_op(settings: Settings) -> None:
    migrate(settings)
    migrate(settings)
    engine = make_engine(settings)
    with engine.connect() as conn:
        head = ScriptDirectory.from_config(alembic_config(settings)).get_current_head()
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == head
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


def test_the_demo_flag_never_waits_for_the_request_pool(app) -> None:  # type: ignore[no-untyped-def]
    """Rendering reads the demo flag while the request holds a pooled connection: with every pooled
    connection held that way, a second one from the same pool could never come (bench/checkin.py at 16
    connections stalled 30 s). The flag has an unpooled engine of its own."""
    from sqlalchemy.pool import NullPool

    meta = app.state.templates.engine
    assert meta is not app.state.engine and isinstance(meta.pool, NullPool)
    try:
        with app.state.engine.connect():  # even with a pooled connection held, the flag reads
            app.state.templates._demo = (float("-inf"), False)
            assert app.state.templates.is_demo() is False
    finally:  # no lifespan ran: close what the test opened
        app.state.engine.dispose()
        meta.dispose()
