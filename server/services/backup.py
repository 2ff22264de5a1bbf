"""Online backup and restore of the whole database (`diemdanh backup` / `diemdanh restore`).

- SQLite: the backup is one SQLite file made with SQLite's backup API (`Connection.backup`) in a single
  step, so it is one consistent snapshot (a read transaction) while the app keeps writing under WAL; it is
  switched to the rollback journal so that the file stands alone. Restore copies it back with the same API
  into the configured file, in one write transaction: all of it or nothing.
- PostgreSQL: the backup is `pg_dump --format=custom`, which reads everything in one snapshot while the app
  keeps writing. Restore turns it into SQL with `pg_restore` and runs it with `psql --single-transaction`
  after emptying the `public` schema: all of it or nothing.

Either file carries the `alembic_version` table, so it says which migration made its schema: a backup
from a newer version of the app than this one is refused; an older one is migrated up after restoring.
docs/backup.md says what the files hold and how to schedule backups.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import inspect, text
from sqlalchemy.engine import make_url
from sqlmodel import SQLModel

from server.config import Settings
from server.db import alembic_config, make_engine, migrate

SQLITE_MAGIC = b"SQLite format 3\x00"
PG_MAGIC = b"PGDMP"  # pg_dump's custom format
KINDS = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}


class BackupError(Exception):
    """A backup or restore that cannot be done; the message says why and what to do."""


@dataclass(frozen=True)
class Restored:
    revision: str  # the backup's schema revision
    migrated: bool  # it was older than this version of the app and has been migrated up


def _kind(settings: Settings) -> str:
    return "sqlite" if settings.is_sqlite else "postgresql"


def _sqlite_path(settings: Settings) -> Path:
    url = make_url(settings.database_url)
    if not url.database or url.database == ":memory:":
        raise BackupError("DIEMDANH_DATABASE_URL names an in-memory SQLite database: nothing to keep")
    return Path(url.database)


def _partial(output: Path) -> Path:
    """Written beside the target and renamed at the end, so a scheduled copy never picks up half a file."""
    return output.with_name(f".{output.name}.partial")


# --- Backup ------------------------------------------------------------------------------------------


def backup(settings: Settings, output: Path) -> None:
    """Write a consistent copy of the configured database to `output` while the app may be writing."""
    if output.is_dir():
        raise BackupError(f"{output} is a folder: give a file name, e.g. {output / 'diemdanh.backup'}")
    partial = _partial(output)
    try:
        # It holds personal data: readable by its owner only, from the first byte written.
        partial.unlink(missing_ok=True)
        os.close(os.open(partial, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600))
        if settings.is_sqlite:
            _backup_sqlite(settings, partial)
        else:
            _backup_postgresql(settings, partial)
        partial.replace(output)
    except OSError as error:
        raise BackupError(str(error)) from error
    finally:
        partial.unlink(missing_ok=True)


def _backup_sqlite(settings: Settings, partial: Path) -> None:
    source_path = _sqlite_path(settings)
    if not source_path.is_file():
        raise BackupError(f"there is no database at {source_path} (DIEMDANH_DATABASE_URL)")
    source = sqlite3.connect(f"file:{source_path}?mode=ro", uri=True, timeout=30)
    target = sqlite3.connect(partial)
    try:
        # One step (pages=-1): the whole copy is read in one read transaction, a single snapshot; under
        # WAL the app's writers are not blocked meanwhile.
        source.backup(target)
        target.execute("PRAGMA journal_mode=DELETE")  # a single file, no -wal beside it
        (check,) = target.execute("PRAGMA quick_check").fetchone()
        if check != "ok":
            raise BackupError(f"the copy failed SQLite's check: {check}")
    except sqlite3.Error as error:
        raise BackupError(f"SQLite: {error}") from error
    finally:
        target.close()
        source.close()


def _pg_env(settings: Settings) -> tuple[str, dict[str, str]]:
    """A libpq URI without the password (it would show in the process list) and an environment with it."""
    url = make_url(settings.database_url.replace("+psycopg", ""))
    env = dict(os.environ)
    if url.password is not None:
        env["PGPASSWORD"] = str(url.password)
    uri = url.set(drivername="postgresql", password=None).render_as_string(hide_password=False)
    return uri, env


def _run(command: list[str], env: Mapping[str, str], *, stdin: bytes | None = None) -> bytes:
    tool = command[0]
    if shutil.which(tool) is None:
        raise BackupError(
            f"{tool} is not installed: install PostgreSQL's client tools (Debian: apt-get install "
            "postgresql-client), of the server's major version or newer"
        )
    done = subprocess.run(command, env=dict(env), input=stdin, capture_output=True, check=False)
    if done.returncode != 0:
        message = done.stderr.decode(errors="replace").strip() or f"exit code {done.returncode}"
        raise BackupError(f"{tool} failed: {message}")
    return done.stdout


def _backup_postgresql(settings: Settings, partial: Path) -> None:
    uri, env = _pg_env(settings)
    # One snapshot of the whole database (pg_dump's repeatable-read transaction); owners and grants are
    # left out so that the backup restores into a database owned by another role.
    dump = ["pg_dump", "--format=custom", "--no-owner", "--no-privileges", f"--file={partial}"]
    _run([*dump, f"--dbname={uri}"], env)


# --- Restore -----------------------------------------------------------------------------------------


def backup_kind(path: Path) -> str:
    """'sqlite' or 'postgresql', from the file's first bytes; BackupError if it is neither."""
    try:
        with path.open("rb") as file:
            head = file.read(len(SQLITE_MAGIC))
    except OSError as error:
        raise BackupError(str(error)) from error
    if head.startswith(SQLITE_MAGIC):
        return "sqlite"
    if head.startswith(PG_MAGIC):
        return "postgresql"
    raise BackupError(f"{path} is not a backup made by `diemdanh backup` (not SQLite's nor pg_dump's format)")


def backup_revision(settings: Settings, path: Path) -> str:
    """The schema revision (Alembic's) that the backup file holds."""
    if backup_kind(path) == "sqlite":
        try:
            connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            try:
                rows = connection.execute("SELECT version_num FROM alembic_version").fetchall()
            finally:
                connection.close()
        except sqlite3.Error as error:
            raise BackupError(f"{path} is not a backup of Điểm danh's database: {error}") from error
    else:
        _, env = _pg_env(settings)
        script = _run(["pg_restore", "--data-only", "--table=alembic_version", "--file=-", str(path)], env)
        rows = _copy_rows(script.decode())
    if len(rows) != 1:
        raise BackupError(f"{path} is not a backup of Điểm danh's database (no schema revision in it)")
    return str(rows[0][0])


def _copy_rows(script: str) -> list[tuple[str]]:
    """The rows of the one `COPY ... FROM stdin;` block in pg_restore's SQL output."""
    rows: list[tuple[str]] = []
    inside = False
    for line in script.splitlines():
        if line.startswith("COPY "):
            inside = True
        elif inside and line == "\\.":
            break
        elif inside:
            rows.append((line,))
    return rows


def is_empty(settings: Settings) -> bool:
    """Whether the configured database holds no row of the app's (a new one, or only migrated)."""
    engine = make_engine(settings, pooled=False)
    try:
        with engine.connect() as connection:
            existing = set(inspect(connection).get_table_names())
            for table in SQLModel.metadata.sorted_tables:
                query = text(f'SELECT 1 FROM "{table.name}" LIMIT 1')
                if table.name in existing and connection.execute(query).first() is not None:
                    return False
        return True
    finally:
        engine.dispose()


def restore(settings: Settings, path: Path, *, force: bool = False) -> Restored:
    """Replace the configured database's contents with the backup at `path` (the app must be stopped)."""
    if not path.is_file():
        raise BackupError(f"there is no file {path}")
    kind = backup_kind(path)
    if kind != _kind(settings):
        raise BackupError(
            f"{path} is a {KINDS[kind]} backup, but DIEMDANH_DATABASE_URL is a {KINDS[_kind(settings)]} "
            "database: restore it into the same kind of database it came from"
        )
    revision = backup_revision(settings, path)
    scripts = ScriptDirectory.from_config(alembic_config(settings))
    try:
        scripts.get_revision(revision)
    except CommandError:
        raise BackupError(
            f"{path} was made by a newer version of Điểm danh (schema {revision}, this version knows up to "
            f"{scripts.get_current_head()}): update the app first, then restore"
        ) from None
    if settings.is_sqlite:
        _sqlite_path(settings).parent.mkdir(parents=True, exist_ok=True)
    if not force and not is_empty(settings):
        raise BackupError(
            "the database at DIEMDANH_DATABASE_URL already holds data: restoring would replace all of it. "
            "Stop the app, make a backup of it if you may need it, then run restore again with --force"
        )
    if settings.is_sqlite:
        _restore_sqlite(settings, path)
    else:
        _restore_postgresql(settings, path)
    migrated = revision != scripts.get_current_head()
    if migrated:
        migrate(settings)
    return Restored(revision=revision, migrated=migrated)


def _restore_sqlite(settings: Settings, path: Path) -> None:
    source = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    target = sqlite3.connect(_sqlite_path(settings), timeout=30)
    try:
        (check,) = source.execute("PRAGMA quick_check").fetchone()
        if check != "ok":
            raise BackupError(f"{path} is damaged (SQLite's check says: {check})")
        # The backup API in reverse: one step, one write transaction on the target, so a crash leaves the
        # old contents whole.
        source.backup(target)
        target.execute("PRAGMA journal_mode=WAL")
    except sqlite3.Error as error:
        raise BackupError(f"SQLite: {error}") from error
    finally:
        target.close()
        source.close()


def _restore_postgresql(settings: Settings, path: Path) -> None:
    uri, env = _pg_env(settings)
    script = _run(["pg_restore", "--no-owner", "--no-privileges", "--file=-", str(path)], env)
    # Empty the schema and load the backup in one transaction: if anything fails, nothing changed.
    preamble = b"DROP SCHEMA IF EXISTS public CASCADE;\nCREATE SCHEMA public;\n"
    psql = ["psql", "--quiet", "--no-psqlrc", "--single-transaction", "--set=ON_ERROR_STOP=1"]
    _run([*psql, f"--dbname={uri}"], env, stdin=preamble + script)
