"""`diemdanh backup` and `diemdanh restore`: a backup taken while check-ins keep arriving holds every check-in
committed before it started, whole transactions only; restore refuses what it must and migrates older
backups up. On SQLite and PostgreSQL."""

from __future__ import annotations

import stat
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import text
from sqlmodel import Session, col, select

from server.__main__ import main
from server.config import Settings
from server.db import alembic_config, make_engine, migrate
from server.models import CheckIn, CheckInAttempt, Participant, Role
from server.services import backup
from server.services.checkin import check_in
from tests.conftest import _admin_sql
from tests.factories import count_rows, make_event, make_staff, make_tree, make_venue
from tests.test_checkin import ADULT, DURING, T0, desk

WRITERS = 2
WARM_UP = 20  # check-ins committed before the backup starts
AFTER = 10  # and after it ended, so the writers kept going through it
LIMIT = 2_000  # per writer: the load stops by itself
TIMEOUT = 120  # seconds: a hung writer fails the test instead of hanging it

NewDatabase = Callable[[str], Settings]


@pytest.fixture
def new_database(settings: Settings, tmp_path: Path) -> Iterator[NewDatabase]:
    """Settings for another, empty database of the same kind as `settings`'s (dropped at the end)."""
    made: list[str] = []

    def make(name: str) -> Settings:
        if settings.is_sqlite:
            url = f"sqlite:///{tmp_path / f'{name}.sqlite3'}"
        else:
            head, _, base = settings.database_url.rpartition("/")
            db_name = f"{base}_{name}"
            _admin_sql(settings.database_url, f'DROP DATABASE IF EXISTS "{db_name}"')
            _admin_sql(settings.database_url, f'CREATE DATABASE "{db_name}"')
            made.append(db_name)
            url = f"{head}/{db_name}"
        return Settings(
            env="development", database_url=url, data_dir=tmp_path, secret_key=settings.secret_key
        )

    yield make
    for db_name in made:
        _admin_sql(settings.database_url, f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch) -> Callable[[Settings], None]:
    def use(settings: Settings) -> None:
        monkeypatch.setenv("DIEMDANH_ENV", "development")
        monkeypatch.setenv("DIEMDANH_DATABASE_URL", settings.database_url)
        monkeypatch.setenv("DIEMDANH_DATA_DIR", str(settings.data_dir))

    return use


class Load:
    """Writer threads checking new people in through the real engine, each on its own session, until told
    to stop; `acknowledged` holds the key of every check-in whose transaction has committed."""

    def __init__(self, settings: Settings, event_id: int, staff_id: int) -> None:
        self.settings, self.event_id, self.staff_id = settings, event_id, staff_id
        self.engine = make_engine(settings)
        self.acknowledged: list[str] = []
        self.errors: list[str] = []
        self.changed = threading.Condition()
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._write, daemon=True) for _ in range(WRITERS)]
        for thread in self.threads:
            thread.start()

    def _write(self) -> None:
        from server.models import Event, Staff

        with Session(self.engine, expire_on_commit=False) as session:
            event, staff = session.get(Event, self.event_id), session.get(Staff, self.staff_id)
            assert event is not None and staff is not None
            session.commit()
            for _ in range(LIMIT):
                if self.stop.is_set():
                    break
                request = desk(event, profile=ADULT)
                try:
                    check_in(session, self.settings, request, staff=staff, now=DURING)
                except Exception as error:  # reported by the test, not lost in a thread
                    with self.changed:
                        self.errors.append(f"{type(error).__name__}: {error}")
                        self.changed.notify_all()
                    return
                with self.changed:
                    self.acknowledged.append(request.key)
                    self.changed.notify_all()

    def wait_for(self, count: int) -> None:
        with self.changed:
            assert self.changed.wait_for(lambda: len(self.acknowledged) >= count or self.errors, TIMEOUT)
            assert not self.errors, self.errors

    def snapshot(self) -> set[str]:
        with self.changed:
            return set(self.acknowledged)

    def finish(self) -> set[str]:
        self.stop.set()
        for thread in self.threads:
            thread.join(TIMEOUT)
        assert not any(t.is_alive() for t in self.threads)
        self.engine.dispose()
        assert not self.errors, self.errors
        return set(self.acknowledged)


def test_a_backup_under_write_load_restores_every_committed_check_in(
    session: Session, settings: Settings, new_database: NewDatabase, tmp_path: Path
) -> None:
    units = make_tree(session)
    organizer = make_staff(session, Role.organizer, units["commune"])
    event = make_event(session, make_venue(session, units["village"]), starts_at=T0)
    assert event.id is not None and organizer.id is not None
    file = tmp_path / "under-load.backup"

    load = Load(settings, event.id, organizer.id)
    try:
        load.wait_for(WARM_UP)
        committed_before = load.snapshot()  # every one of these was acknowledged before the backup began
        backup.backup(settings, file)
        load.wait_for(len(committed_before) + AFTER)
    finally:
        acknowledged = load.finish()
    assert stat.S_IMODE(file.stat().st_mode) == 0o600  # personal data: the owner's only

    target = new_database("restored")
    restored = backup.restore(target, file)
    assert restored == backup.Restored(revision=_head(target), migrated=False)

    engine = make_engine(target)
    try:
        with Session(engine) as copy:
            keys = set(copy.exec(select(CheckIn.nonce)).all())
            assert committed_before <= keys  # nothing committed before the backup is missing
            assert keys <= acknowledged  # and nothing that was never committed is there
            assert len(keys) == count_rows(copy, CheckIn)  # no key twice
            # Whole transactions only: each check-in with its new participant and its logged attempt.
            accepted = copy.exec(
                select(CheckInAttempt.nonce, CheckInAttempt.check_in_id).where(
                    col(CheckInAttempt.outcome) == "accepted"
                )
            ).all()
            by_key = {c.nonce: c.id for c in copy.exec(select(CheckIn)).all()}
            assert dict(accepted) == by_key
            assert count_rows(copy, Participant) == len(keys)
    finally:
        engine.dispose()
    # The live database went on: it holds everything acknowledged, more than before the backup.
    assert count_rows(session, CheckIn) == len(acknowledged) >= len(committed_before) + AFTER


def _head(settings: Settings) -> str:
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config(settings)).get_current_head()
    assert head is not None
    return head


def test_restore_refuses_a_database_with_data_unless_forced(
    session: Session,
    settings: Settings,
    new_database: NewDatabase,
    tmp_path: Path,
    cli_env: Callable[[Settings], None],
    capsys: pytest.CaptureFixture[str],
) -> None:
    make_tree(session)
    file = tmp_path / "units.backup"
    cli_env(settings)
    assert main(["backup", "--output", str(file)]) == 0
    assert "units.backup" in capsys.readouterr().out

    target = new_database("other")
    migrate(target)
    engine = make_engine(target)
    with Session(engine) as other:
        make_staff(other, Role.admin)  # the data restore would lose
    engine.dispose()
    cli_env(target)
    assert main(["restore", str(file)]) == 1
    assert "already holds data" in capsys.readouterr().err
    assert main(["restore", str(file), "--force"]) == 0
    assert "Restored" in capsys.readouterr().out

    engine = make_engine(target)
    with Session(engine) as other:
        assert count_rows(other, CheckIn) == 0
        from server.models import OrgUnit, Staff

        assert count_rows(other, Staff) == 0  # replaced, not merged
        assert count_rows(other, OrgUnit) == count_rows(session, OrgUnit) > 0
    engine.dispose()


def test_restore_refuses_files_that_are_not_its_backups(
    settings: Settings,
    tmp_path: Path,
    cli_env: Callable[[Settings], None],
    capsys: pytest.CaptureFixture[str],
) -> None:
    cli_env(settings)
    text_file = tmp_path / "notes.txt"
    text_file.write_text("not a backup")
    assert main(["restore", str(text_file)]) == 1
    assert "not a backup made by `diemdanh backup`" in capsys.readouterr().err

    other_kind = tmp_path / "other-kind.backup"
    other_kind.write_bytes(backup.PG_MAGIC if settings.is_sqlite else backup.SQLITE_MAGIC)
    assert main(["restore", str(other_kind)]) == 1
    assert "restore it into the same kind of database" in capsys.readouterr().err

    assert main(["restore", str(tmp_path / "missing.backup")]) == 1
    assert "there is no file" in capsys.readouterr().err


def test_restore_refuses_a_backup_from_a_newer_version(new_database: NewDatabase, tmp_path: Path) -> None:
    newer = new_database("newer-app")  # its own database: the shared test database keeps its revision
    migrate(newer)
    engine = make_engine(newer)
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    engine.dispose()
    file = tmp_path / "newer.backup"
    backup.backup(newer, file)
    target = new_database("older-app")
    with pytest.raises(backup.BackupError, match=r"made by a newer version of Điểm danh \(schema 9999"):
        backup.restore(target, file)
    assert backup.is_empty(target)


def test_a_backup_from_an_older_version_is_migrated_up(new_database: NewDatabase, tmp_path: Path) -> None:
    old = new_database("old")
    migrate(old)
    command.downgrade(alembic_config(old), "0006")
    file = tmp_path / "old.backup"
    backup.backup(old, file)
    assert backup.backup_revision(old, file) == "0006"

    target = new_database("new")
    assert backup.restore(target, file) == backup.Restored(revision="0006", migrated=True)
    engine = make_engine(target)
    with engine.connect() as connection:
        version = connection.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
    assert version == _head(target)
    engine.dispose()


def test_backup_says_what_went_wrong(
    tmp_path: Path, cli_env: Callable[[Settings], None], capsys: pytest.CaptureFixture[str]
) -> None:
    cli_env(Settings(env="development", database_url=f"sqlite:///{tmp_path / 'none.sqlite3'}"))
    assert main(["backup", "--output", str(tmp_path / "x.backup")]) == 1
    assert "there is no database at" in capsys.readouterr().err
    assert not (tmp_path / "x.backup").exists()
    assert not list(tmp_path.glob(".x.backup.partial"))
