"""The database layer: migrations on both backends, SQLite pragmas."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
from dataclasses import replace
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel, col, select

from server.config import Settings
from server.db import alembic_config, begin_write, insert_row, make_engine, migrate
from server.errors import database_refusal
from server.models import OrgUnit, UnitKind


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
        assert conn.execute(text("PRAGMA synchronous")).scalar() == 2  # FULL: a power cut loses no commit
    engine.dispose()
    relaxed = make_engine(replace(settings, sqlite_synchronous="normal"))
    with relaxed.connect() as conn:
        assert conn.execute(text("PRAGMA synchronous")).scalar() == 1  # NORMAL, when chosen
    relaxed.dispose()


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


def _sqlite_only(settings: Settings) -> None:
    if not settings.is_sqlite:
        pytest.skip("the write gate is SQLite's")


def test_every_end_of_a_write_opens_the_gate_for_the_next(settings: Settings) -> None:
    """Commit, rollback and close each let the next writer in at once: a gate left shut would make the next
    write wait out the timeout and fail."""
    _sqlite_only(settings)
    engine = make_engine(replace(settings, db_timeout_seconds=0.5))
    ends = [Session.commit, Session.rollback, Session.close]
    for end in ends:
        session = Session(engine)
        begin_write(session)
        session.exec(text("UPDATE org_unit SET name = name WHERE id = 0"))  # type: ignore[call-overload]
        end(session)
        with Session(engine) as second:
            begin_write(second)  # would raise "database is locked" after 0.5 s
            second.commit()
        session.close()
    engine.dispose()


def test_a_writer_waits_at_the_gate_and_then_fails_as_a_busy_database(settings: Settings) -> None:
    """A second writer of the same process queues behind the first; past the timeout it fails the way a
    locked database does (the app answers 503 with Retry-After), and nothing of it was written."""
    _sqlite_only(settings)
    engine = make_engine(replace(settings, db_timeout_seconds=0.3))
    holder = Session(engine)
    begin_write(holder)
    failed: list[BaseException] = []

    def second_writer() -> None:
        with Session(engine) as session:
            try:
                begin_write(session)
            except sqlite3.OperationalError as error:
                failed.append(error)

    thread = threading.Thread(target=second_writer)
    thread.start()
    thread.join(timeout=10)
    holder.rollback()
    holder.close()
    assert [str(error) for error in failed] == ["database is locked"]
    assert database_refusal(failed[0]) is not None  # the app's 503 for a busy database
    with Session(engine) as session:  # and the gate is open again
        begin_write(session)
        session.commit()
    engine.dispose()


def test_the_gate_queues_writers_of_another_process(settings: Settings, tmp_path: Path) -> None:
    """Another process (a second uvicorn worker, the CLI) holding the gate's file lock keeps this one's
    writer out until it lets go."""
    _sqlite_only(settings)
    engine = make_engine(replace(settings, db_timeout_seconds=0.3))
    db_file = Path(settings.database_url.split(":///", 1)[1])
    script = (
        "import fcntl, os, sys, time\n"
        f"fd = os.open({str(db_file) + '-writer'!r}, os.O_RDWR | os.O_CREAT)\n"
        "fcntl.flock(fd, fcntl.LOCK_EX)\n"
        "print('held', flush=True)\n"
        "sys.stdin.readline()\n"
    )
    other = subprocess.Popen(
        [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert other.stdout is not None and other.stdout.readline().strip() == "held"
        with Session(engine) as session, pytest.raises(sqlite3.OperationalError):
            begin_write(session)
    finally:
        other.communicate("go\n", timeout=10)
    with Session(engine) as session:
        begin_write(session)
        session.commit()
    engine.dispose()


def test_a_row_insert_row_made_is_saved_when_changed_and_forgotten_after_a_rollback(engine: Engine) -> None:
    """insert_row's object behaves like a flushed one: a change to it is saved at commit, and after a
    rollback it leaves the session, so a row made again with the same id (SQLite reuses it) can join."""
    with Session(engine) as session:
        unit = insert_row(
            session, OrgUnit(kind=UnitKind.province, code="Lạng Sơn", code_system="test", name="Lạng Sơn")
        )
        unit.name = "Tỉnh Lạng Sơn"
        session.commit()
        assert session.exec(select(OrgUnit.name).where(OrgUnit.id == unit.id)).one() == "Tỉnh Lạng Sơn"
        gone = insert_row(
            session, OrgUnit(kind=UnitKind.province, code="Cao Bằng", code_system="test", name="Cao Bằng")
        )
        session.rollback()
        assert gone not in session
        again = insert_row(
            session, OrgUnit(kind=UnitKind.province, code="Bắc Kạn", code_system="test", name="Bắc Kạn")
        )
        session.commit()
        names = session.exec(select(OrgUnit.name).order_by(col(OrgUnit.id))).all()
        assert names == ["Tỉnh Lạng Sơn", "Bắc Kạn"] and again in session
