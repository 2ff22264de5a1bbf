"""Engine, sessions and migrations, all built from Settings (no engine exists at import time)."""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import event as sa_event
from sqlalchemy import insert
from sqlalchemy.engine import Engine
from sqlalchemy.orm import make_transient_to_detached
from sqlalchemy.pool import NullPool
from sqlmodel import Session, SQLModel, create_engine

from server.config import Settings

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def _sqlalchemy_url(url: str) -> str:
    # psycopg 3 is the driver; plain postgresql:// URLs would ask for psycopg2.
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


SQLITE_POOL: dict[str, Any] = {"pool_size": 4, "max_overflow": 4}


def make_engine(settings: Settings, *, pooled: bool = True) -> Engine:
    """One engine per app (or CLI command); SQLite gets WAL, foreign keys and a busy timeout. `pooled=False`
    opens a connection per use, for rare reads that must never wait for the request pool."""
    url = _sqlalchemy_url(settings.database_url)
    pool: dict[str, Any] = {} if pooled else {"poolclass": NullPool}
    if settings.is_sqlite:
        db_path = url.split(":///", 1)[1] if ":///" in url else ""
        if db_path and db_path != ":memory:":
            Path(db_path).parent.mkdir(parents=True, exist_ok=True)
        timeout = settings.db_timeout_seconds
        sqlite_args = {"check_same_thread": False, "timeout": timeout}
        # One writer at a time anyway (the write gate): eight connections serve a process's readers, and
        # each one keeps its own page cache (up to 2 MB). With SQLAlchemy's default of fifteen an app
        # process ended a load at 160-167 MB, with eight at 127-139 MB and the same speed (bench/load.py).
        engine = create_engine(url, connect_args=sqlite_args, **(pool or SQLITE_POOL))
        # pysqlite's own transaction handling is kept on purpose: reads run outside transactions and BEGIN
        # comes just before the first write, so a write waits for the lock (busy_timeout) instead of
        # failing at once because an older read snapshot cannot be upgraded (SQLITE_BUSY_SNAPSHOT).
        pragmas = _sqlite_pragmas(int(timeout * 1000), settings.sqlite_synchronous.upper())
        sa_event.listen(engine, "connect", pragmas)
        if db_path and db_path != ":memory:":
            _GATES[engine] = WriteGate(Path(db_path), timeout)
        return engine
    # A server that does not answer, or a lock held past the timeout, fails the request (the app answers
    # 503 with Retry-After) instead of holding it forever; pool_pre_ping drops connections a restart
    # killed, so the app recovers by itself once the server is back.
    seconds = max(1, round(settings.db_timeout_seconds))
    connect_args: dict[str, Any] = {"connect_timeout": seconds}
    if settings.database_pooler == "pgbouncer":
        # Each transaction may run on another server connection: one prepared by psycopg after five runs
        # is missing there ("prepared statement does not exist"), and startup options are refused. The
        # lock timeout is then the database role's (ALTER ROLE ... SET lock_timeout; docs/scale-out.md).
        connect_args["prepare_threshold"] = None
    else:
        connect_args["options"] = f"-c lock_timeout={int(settings.db_timeout_seconds * 1000)}"
    if not pooled:
        return create_engine(url, connect_args=connect_args, **pool)
    return create_engine(
        url,
        connect_args=connect_args,
        pool_pre_ping=True,
        pool_size=10,
        max_overflow=10,
        pool_timeout=seconds,
    )


def _sqlite_pragmas(busy_timeout_ms: int, synchronous: str) -> Any:
    def set_pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA synchronous={synchronous}")  # FULL or NORMAL: DIEMDANH_SQLITE_SYNCHRONOUS
        cursor.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
        cursor.close()

    return set_pragmas


class WriteGate:
    """The queue in front of a SQLite file's write lock. SQLite makes a writer that finds the file locked
    poll with growing sleeps (1 ms up to 100 ms), so under load a few unlucky requests wait seconds while
    others pass; the gate lines writers up instead: the threads of this process on a lock (woken as soon
    as it is free), one thread per process on an flock of `<file>-writer` (polled every millisecond or
    so). Waiting is bounded by the database timeout, after which the write fails as a busy database (503)."""

    def __init__(self, db_path: Path, timeout: float) -> None:
        self.path = db_path.with_name(db_path.name + "-writer")
        self.timeout = timeout
        self._threads = threading.Lock()
        self._fd: int | None = None
        self._pid = 0

    def acquire(self) -> None:
        deadline = time.monotonic() + self.timeout
        if not self._threads.acquire(timeout=self.timeout):
            raise sqlite3.OperationalError("database is locked")
        try:
            self._flock(deadline)
        except BaseException:
            self._threads.release()
            raise

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        self._threads.release()

    def _flock(self, deadline: float) -> None:
        if self._fd is None or self._pid != os.getpid():  # a forked worker opens its own descriptor
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            self._pid = os.getpid()
        pause = 0.0005
        while True:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise sqlite3.OperationalError("database is locked") from None
                time.sleep(pause)
                pause = min(pause * 2, 0.002)


_GATES: weakref.WeakKeyDictionary[Engine, WriteGate] = weakref.WeakKeyDictionary()
_HELD = "write_gate"  # session.info key: the gate a session holds until its transaction ends


def begin_write(session: Session) -> None:
    """Start a transaction that reads, then writes, as one unit: on SQLite take the write lock now
    (BEGIN IMMEDIATE, waiting up to busy_timeout) so that what it reads cannot change before it writes.
    Commits whatever the session had pending first. Writers queue at the file's WriteGate first; it is
    released when the transaction ends (commit, rollback or close). No-op on PostgreSQL, where row locks
    and unique constraints do this job."""
    bind = session.get_bind()
    if bind.dialect.name != "sqlite":
        return
    session.commit()
    dbapi_connection = session.connection().connection.dbapi_connection
    if dbapi_connection is None or dbapi_connection.in_transaction:
        return
    gate = _GATES.get(bind) if isinstance(bind, Engine) else None
    if gate is not None and _HELD not in session.info:
        gate.acquire()
        session.info[_HELD] = gate
    try:
        dbapi_connection.execute("BEGIN IMMEDIATE")
    except BaseException:
        _release_gate(session)
        raise


def _release_gate(session: Session, *_args: Any) -> None:
    gate = session.info.pop(_HELD, None)
    if gate is not None:
        gate.release()


_WROTE = "wrote"  # session.info key: the transaction has flushed a change
_INSERTED = "inserted"  # session.info key: the objects insert_row put in the session in this transaction
RowT = TypeVar("RowT", bound=SQLModel)


def insert_row(session: Session, row: RowT) -> RowT:
    """INSERT one new row in one statement, outside the unit of work, and put the object in the session
    as if it had been flushed (persistent, with its new id; later changes to it are saved as usual). For
    the check-in path, where flushing a single object costs several times the statement itself."""
    table: Any = row.__table__  # type: ignore[attr-defined]
    statement = _INSERTS.get(table)
    if statement is None:  # built once a table: its compiled form is then found in SQLAlchemy's cache
        statement = _INSERTS[table] = insert(table).returning(table.c.id)
    values = {column.key: getattr(row, column.key) for column in table.columns if not column.primary_key}
    row.id = session.execute(statement, values).scalar_one()
    make_transient_to_detached(row)
    session.add(row)
    session.info[_WROTE] = True
    session.info.setdefault(_INSERTED, []).append(row)  # a rollback takes them out again (_forget_inserted)
    return row


_INSERTS: dict[Any, Any] = {}


def wrote(session: Session) -> bool:
    """Whether the session's transaction has changed anything yet (flushed or pending). A refusal before any
    change can be logged in the same transaction instead of rolling back, which would expire every object
    the caller still shows and read each of them again."""
    return bool(session.info.get(_WROTE) or session.new or session.dirty or session.deleted)


def _flushed(session: Session, _context: Any) -> None:
    session.info[_WROTE] = True


def _forget_inserted(session: Session) -> None:
    """After a rollback the rows insert_row made are gone: so are their objects (as the unit of work does
    with objects it inserted), or a row made again with the same id could not join the session."""
    for row in session.info.pop(_INSERTED, []):
        if row in session:
            session.expunge(row)


def _end_of_transaction(session: Session, transaction: Any) -> None:
    if transaction.parent is None:  # the session's outermost transaction: the write is over
        _release_gate(session)
        session.info.pop(_WROTE, None)
        session.info.pop(_INSERTED, None)


sa_event.listen(Session, "after_flush", _flushed)
sa_event.listen(Session, "after_rollback", _forget_inserted)
sa_event.listen(Session, "after_transaction_end", _end_of_transaction)


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session that commits on success and rolls back on error (CLI, services run outside requests)."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def alembic_config(settings: Settings) -> Config:
    from alembic.config import Config  # about 10 MB: loaded by the commands that migrate, not by each worker

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", _sqlalchemy_url(settings.database_url).replace("%", "%%"))
    return config


def migrate(settings: Settings) -> None:
    """Bring the database schema up to date (safe to run at every start)."""
    if settings.is_sqlite:
        # Creates the data folder and switches the file to WAL (a lasting property of the file).
        engine = make_engine(settings)
        with engine.connect():
            pass
        engine.dispose()
    from alembic import command

    command.upgrade(alembic_config(settings), "head")
