"""The `diemdanh` command (also `python -m server`): serve, migrate, demo, create-user, load-communes, the
scheduled exports report and export-checkins, and the scheduled upkeep backup, restore, prune-attempts,
make-sessions and retention."""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from sqlalchemy import or_
from sqlmodel import Session, col, select

from server.config import Settings, SettingsError
from server.db import make_engine, migrate, session_scope
from server.errors import AppError, FormError
from server.i18n import LANGUAGES
from server.models import OrgUnit, Role, Staff

if TYPE_CHECKING:
    from server.services.areas import Area
    from server.services.reports import ReportWindow

Producer = Callable[[Session, Settings, "ReportWindow", "Area", BinaryIO], None]


def _settings(**overrides: object) -> Settings:
    try:
        return Settings.from_env(None, **overrides)
    except SettingsError as error:
        print(f"diemdanh: {error}", file=sys.stderr)
        raise SystemExit(2) from None


@contextmanager
def _database(settings: Settings) -> Iterator[Session]:
    """The schema brought up to date, then one session for the command's work (committed if it ends well)."""
    migrate(settings)
    engine = make_engine(settings)
    try:
        with session_scope(engine) as session:
            yield session
    finally:
        engine.dispose()


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    overrides = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    settings = _settings(**overrides)
    _bring_up_to_date(settings)
    # Worker processes build their own app from the environment, so pass the overrides on through it.
    for name, value in overrides.items():
        os.environ[f"DIEMDANH_{name.upper()}"] = str(value)
    print(f"Điểm danh: {settings.base_url} (listening on {settings.host}:{settings.port})")
    uvicorn.run(
        "server.app:app_from_env",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=args.workers,
        proxy_headers=True,
        log_level=args.log_level,
    )
    return 0


def cmd_migrate(_args: argparse.Namespace) -> int:
    _bring_up_to_date(_settings())
    return 0


def _bring_up_to_date(settings: Settings) -> None:
    """The schema, then the reports' kept aggregates (services/rollup.py): else the first report after an
    upgrade folds every record in (20-40 s over a million check-ins) while someone waits for it."""
    from server.services import rollup

    migrate(settings)
    print("The database schema is up to date.")
    engine = make_engine(settings)
    with Session(engine) as session:
        rollup.refresh(session, settings.tz, fold_at=1)
    engine.dispose()
    print("The reports' kept aggregates are up to date.")


def cmd_demo(args: argparse.Namespace) -> int:
    from server.services import demo

    settings = _settings()
    migrate(settings)
    # Kept beside the data so that the next `scripts/start` can show them again (demo accounts only).
    logins_file = settings.data_dir / "demo-logins.txt"
    engine = make_engine(settings)
    try:
        with session_scope(engine) as session:
            if demo.has_data(session):
                if args.if_empty:
                    print("The database already has data: demo data not added.")
                    if logins_file.exists():
                        print(logins_file.read_text(encoding="utf-8"), end="")
                    return 0
                if not args.reset:
                    print(
                        "diemdanh: the database already has data. Use --reset to replace it with demo data "
                        "(this deletes everything in it).",
                        file=sys.stderr,
                    )
                    return 1
                demo.wipe(session)
        with session_scope(engine) as session:
            logins = demo.build(session, settings, seed=args.seed)
    finally:
        engine.dispose()
    lines = ["Demo logins (username / password / role):"]
    lines += [f"  {username:<18} {password:<16} {role}" for username, password, role in logins]
    text = "\n".join(lines) + "\n"
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    logins_file.write_text(text, encoding="utf-8")
    logins_file.chmod(0o600)
    print("Demo data is ready.")
    print(text, end="")
    return 0


def cmd_create_user(args: argparse.Namespace) -> int:
    from server.services import staff

    settings = _settings()
    migrate(settings)
    password = sys.stdin.readline().rstrip("\n") if args.password_stdin else getpass.getpass("Password: ")
    engine = make_engine(settings)
    try:
        with session_scope(engine) as session:
            unit_id = None
            if args.unit:
                unit = _find_unit(session, args.unit)
                if unit is None:
                    print(f"diemdanh: no unit with code or name {args.unit!r}", file=sys.stderr)
                    return 1
                unit_id = unit.id
            user = staff.create_staff(
                session,
                username=args.username,
                password=password,
                role=Role(args.role),
                unit_id=unit_id,
                full_name=args.name,
            )
    except FormError as error:
        for field, message in error.fields.items():
            print(f"diemdanh: {field}: {message}", file=sys.stderr)
        return 1
    except AppError as error:
        print(f"diemdanh: {error}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    print(f"Created {user.role.value} {user.username!r}.")
    return 0


def _find_unit(session: Session, code_or_name: str) -> OrgUnit | None:
    """A unit in use today, by its code (06253) or its exact name (Xã Văn Quan)."""
    found = session.exec(
        select(OrgUnit).where(
            or_(col(OrgUnit.code) == code_or_name, col(OrgUnit.name) == code_or_name),
            col(OrgUnit.valid_to).is_(None),
        )
    ).all()
    return found[0] if len(found) == 1 else None


def cmd_load_communes(args: argparse.Namespace) -> int:
    from server.services import places

    with _database(_settings()) as session:
        summary = places.load_communes(session, args.file) if args.file else places.load_communes(session)
    print(summary)
    return 0


def cmd_retention(args: argparse.Namespace) -> int:
    from datetime import datetime

    from server.services import retention

    settings = _settings()
    with _database(settings) as session:
        today = datetime.now(settings.tz).date()
        result = retention.run(session, settings, today=today, dry_run=args.dry_run)
    verb = "would lose" if args.dry_run else "lost"
    print(
        f"{result.found} participants with no activity since {result.cutoff:%d/%m/%Y} {verb} their names, "
        f"homes, cards and phones (retention: {settings.retention_years} years); the counts stay."
    )
    return 0


def cmd_make_sessions(_args: argparse.Namespace) -> int:
    from server.services import clubs

    settings = _settings()
    with _database(settings) as session:
        made = clubs.top_up_all(session, settings)
    print(f"Made {len(made)} club sessions: every active club has its sessions 8 weeks ahead.")
    return 0


def _command_line_scope() -> Staff:
    """An administrator's scope (every unit) for the exports: an unsaved Staff that never enters a session
    and logs in nowhere; the report services read only its role and unit."""
    return Staff(username="(command line)", role=Role.admin, unit_id=None, password_hash="!", active=False)


def _write_export(args: argparse.Namespace, produce: Producer) -> int:
    """Resolve the window from --year/--until, then have `produce` write the file to --output."""
    from server.services import indicators, reports

    settings = _settings()
    migrate(settings)
    output = Path(args.output)
    # Written beside the target and renamed at the end, so a scheduled copy never picks up half a file.
    partial = output.with_name(f".{output.name}.partial")
    engine = make_engine(settings)
    try:
        with session_scope(engine) as session:
            area = _area(session, args.unit)
            if area is None:
                print(
                    f"diemdanh: no unit or reporting group with code or name {args.unit!r}", file=sys.stderr
                )
                return 1
            rules = indicators.load_rules(session)
            cutoff = (
                rules.cutoff
                if args.window == ""
                else reports.parse_cutoff("" if args.window == "calendar" else args.window)
            )
            today = datetime.now(settings.tz).date()
            window = reports.window_from_query(args.year, args.until, today=today, cutoff=cutoff)
            with partial.open("wb") as file:
                produce(session, settings, window, area, file)
        partial.replace(output)
    except FormError as error:
        for field, message in error.fields.items():
            print(f"diemdanh: --{field}: {message}", file=sys.stderr)
        return 1
    except OSError as error:
        print(f"diemdanh: {error}", file=sys.stderr)
        return 1
    finally:
        partial.unlink(missing_ok=True)
        engine.dispose()
    print(f"Wrote {output} ({window.start:%d/%m/%Y}-{window.end:%d/%m/%Y}).")
    return 0


def _area(session: Session, unit: str) -> Area | None:
    """Everything (no --unit), a unit by code or name, or a reporting group by name; None if unknown."""
    from server.models import ReportGroup
    from server.services import areas

    scope = _command_line_scope()
    if not unit:
        return areas.resolve_area(session, scope, "")
    found = _find_unit(session, unit)
    if found is not None:
        return areas.resolve_area(session, scope, f"u:{found.id}")
    group = session.exec(select(ReportGroup).where(ReportGroup.name == unit.strip())).first()
    return areas.resolve_area(session, scope, f"g:{group.id}") if group else None


def cmd_report(args: argparse.Namespace) -> int:
    from server.services import exports, indicators, reports

    def produce(
        session: Session, settings: Settings, window: ReportWindow, area: Area, file: BinaryIO
    ) -> None:
        scope = _command_line_scope()
        totals = reports.yearly_totals(session, scope, window, settings.tz, area=area)
        evaluation = indicators.evaluate(session, scope, window, area, settings.tz)
        tables = indicators.annual_tables(session, scope, window, area, settings.tz)
        file.write(exports.to_xlsx(totals, args.language, evaluation, tables))

    return _write_export(args, produce)


def cmd_export_checkins(args: argparse.Namespace) -> int:
    from server.services import checkin_export

    def produce(
        session: Session, settings: Settings, window: ReportWindow, area: Area, file: BinaryIO
    ) -> None:
        rows = checkin_export.export_rows(session, _command_line_scope(), window, settings.tz, area=area)
        checkin_export.write_checkins_csv(rows, file, args.language)

    return _write_export(args, produce)


def cmd_backup(args: argparse.Namespace) -> int:
    from server.services import backup

    settings = _settings()
    output = Path(args.output)
    try:
        backup.backup(settings, output)
    except backup.BackupError as error:
        print(f"diemdanh: backup failed: {error}", file=sys.stderr)
        return 1
    print(f"Wrote {output} ({output.stat().st_size:,} bytes).")
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    from server.services import backup

    settings = _settings()
    try:
        restored = backup.restore(settings, Path(args.file), force=args.force)
    except backup.BackupError as error:
        print(f"diemdanh: restore refused: {error}", file=sys.stderr)
        return 1
    note = " and migrated up to this version's schema" if restored.migrated else ""
    print(f"Restored {args.file} (schema {restored.revision}){note}.")
    return 0


def cmd_prune_attempts(_args: argparse.Namespace) -> int:
    from server.services import attempts

    settings = _settings()
    with _database(settings) as session:
        pruned = attempts.prune(session, settings)
    print(
        f"Folded {pruned.rows:,} attempt-log lines ({pruned.attempts:,} attempts) older than "
        f"{pruned.cutoff.astimezone(settings.tz):%d/%m/%Y %H:%M} into the daily summary."
    )
    return 0


def _window_arguments(parser: argparse.ArgumentParser, output_example: str) -> None:
    parser.add_argument("--year", required=True, help="statistical year, e.g. 2025")
    parser.add_argument(
        "--until",
        default="",
        metavar="YYYY-MM-DD",
        help="cut-off date inside the year (default: 31/12, or today for the current year)",
    )
    parser.add_argument(
        "--window",
        default="",
        metavar="calendar|DD/MM",
        help="the reporting year: 'calendar' (1/1-31/12) or the year ending on a cut-off day such as 31/10 "
        "(default: the cut-off set under Indicators > Targets and rules)",
    )
    parser.add_argument(
        "--unit",
        default="",
        help="a unit's code or name, or a reporting group's name (default: every unit)",
    )
    parser.add_argument("--output", required=True, help=f"file to write, e.g. {output_example}")
    parser.add_argument(
        "--language",
        choices=LANGUAGES,
        default="vi",
        help="language of the headers and labels (default: vi, Vietnamese)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="diemdanh",
        description="Điểm danh: event check-in and participation tracking. Settings come from DIEMDANH_* "
        "environment variables (see README.md); by default the data lives in data/diemdanh.sqlite3 "
        "in the project folder.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser(
        "serve",
        help="migrate the database and bring the reports' kept aggregates up to date, then run the web app",
        description="Bring the database schema up to date, then serve the app.",
    )
    serve.add_argument("--host", help="address to listen on (default: DIEMDANH_HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (default: DIEMDANH_PORT or 8000)")
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        help="number of processes (more than one needs PostgreSQL or shares the SQLite file)",
    )
    serve.add_argument(
        "--log-level",
        default="info",
        choices=["critical", "error", "warning", "info", "debug"],
        help="uvicorn's log level (default: info)",
    )
    serve.set_defaults(func=cmd_serve)

    commands.add_parser(
        "migrate",
        help="bring the database schema up to date",
        description="Apply every Alembic migration the database at DIEMDANH_DATABASE_URL does not have "
        "yet. `serve` does this too before it starts.",
    ).set_defaults(func=cmd_migrate)

    demo = commands.add_parser(
        "demo",
        help="fill the database with demo data and print the logins it made",
        description="Build a believable demo data set (the six communes of the former Văn Quan district, "
        "villages, venues, two years of events and check-ins) and print the staff logins it created. "
        "Every page then says that it shows demo data.",
    )
    group = demo.add_mutually_exclusive_group()
    group.add_argument("--reset", action="store_true", help="delete everything in the database first")
    group.add_argument(
        "--if-empty", action="store_true", help="do nothing (and succeed) when the database already has data"
    )
    demo.add_argument("--seed", type=int, default=2026, help="random seed, for a reproducible data set")
    demo.set_defaults(func=cmd_demo)

    create = commands.add_parser(
        "create-user",
        help="create a staff account",
        description="Create a staff account. The password is asked for (or read from standard input with "
        "--password-stdin) and must be at least 10 characters long.",
    )
    create.add_argument("username", help="login name: 3-64 characters, a-z 0-9 . _ -")
    create.add_argument(
        "--role",
        choices=[r.value for r in Role],
        default=Role.organizer.value,
        help="admin (everything), office (reports and events for its unit and below), "
        "organizer (events at venues in its unit); default: organizer",
    )
    create.add_argument(
        "--unit",
        help="code or exact name of the staff member's unit (not for admin), e.g. 06253 for Xã Văn Quan",
    )
    create.add_argument("--name", default="", help="full name, shown on pages")
    create.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    create.set_defaults(func=cmd_create_user)

    load = commands.add_parser(
        "load-communes",
        help="load the province and its communes (Lạng Sơn, 2025) into the place tree",
        description="Load the province and its communes after the 1/7/2025 reorganisation, with the units "
        "each was made from. Safe to run again: existing units are kept.",
    )
    load.add_argument(
        "--file", help="a JSON file in the same format as server/data/lang-son-communes-2025.json"
    )
    load.set_defaults(func=cmd_load_communes)

    report = commands.add_parser(
        "report",
        help="write the annual report as an XLSX workbook, for scheduled exports",
        description="Write the annual report (the same workbook as the Excel download on the reports page: "
        "the plan's indicators against their targets, then participation by commune, venue, event type, "
        "campaign, month, age group and gender) for every unit, or for one unit or reporting group "
        "(--unit), to a file. Records count up to the reporting year's last day, or up to today in the "
        "running year, or up to --until.",
    )
    _window_arguments(report, "report.xlsx")
    report.set_defaults(func=cmd_report)

    checkins = commands.add_parser(
        "export-checkins",
        help="write every check-in and walk-in count of a year as a CSV file, for scheduled exports",
        description="Write one CSV row per check-in and per walk-in count in the window (the rows the "
        "annual report counts, for every unit or for --unit), with the place and time as they were that "
        "day and a person number instead of a name. Columns: docs/exports.md. The file is streamed: a "
        "year of a million check-ins takes little memory.",
    )
    _window_arguments(checkins, "checkins.csv")
    checkins.set_defaults(func=cmd_export_checkins)

    backup = commands.add_parser(
        "backup",
        help="write a consistent copy of the whole database to a file, while the app keeps running",
        description="Write a consistent copy of the whole database at DIEMDANH_DATABASE_URL to a file, "
        "while the app keeps running and taking check-ins: everything committed when the backup starts is "
        "in it, nothing half-written. SQLite: one SQLite file (SQLite's backup API). PostgreSQL: a "
        "pg_dump archive in its custom format (needs pg_dump of the server's major version or newer). "
        "Restore it with `diemdanh restore`. Scheduling: docs/backup.md.",
    )
    backup.add_argument(
        "--output", required=True, help="file to write, e.g. /var/backups/diemdanh/2026-12-03.backup"
    )
    backup.set_defaults(func=cmd_backup)

    restore = commands.add_parser(
        "restore",
        help="bring a backup made by `diemdanh backup` back into the database (stop the app first)",
        description="Replace everything in the database at DIEMDANH_DATABASE_URL with a backup made by "
        "`diemdanh backup`, in one transaction: all of it or nothing. Stop the app first. The database "
        "must be of the kind the backup came from (SQLite or PostgreSQL). A backup from a newer version "
        "of the app is refused; one from an older version is migrated up after restoring. A database that "
        "already holds data is refused unless --force is given.",
    )
    restore.add_argument("file", help="a file written by `diemdanh backup`")
    restore.add_argument(
        "--force", action="store_true", help="replace a database that already holds data (it is lost)"
    )
    restore.set_defaults(func=cmd_restore)

    commands.add_parser(
        "prune-attempts",
        help="fold old lines of the check-in attempt log into daily counts, for scheduled upkeep",
        description="Fold every line of the check-in attempt log whose last attempt is older than "
        "DIEMDANH_ATTEMPT_LOG_DAYS (default 90) into counts per event, day, channel, action and outcome, "
        "and delete those lines. Check-ins and their counts are not touched. Safe to run at any time and "
        "again: a second run finds nothing more to fold.",
    ).set_defaults(func=cmd_prune_attempts)
    commands.add_parser(
        "make-sessions",
        help="make every active club's sessions for the next 8 weeks, for scheduled upkeep",
        description="Make the sessions every active club's weekly schedule asks for up to 8 weeks ahead "
        "that do not exist yet, so a club's year-round poster always finds its session. A slot that "
        "already had a session (even one moved or cancelled since) gets none, so it is safe to run at "
        "any time and again. Opening a club's page or the clubs list, and scanning a club's code, do the "
        "same for those clubs; run this once a day (cron or a systemd timer) so it never depends on them.",
    ).set_defaults(func=cmd_make_sessions)
    keep = commands.add_parser(
        "retention",
        help="remove the names, homes, cards and phones of people not seen for the retention period",
        description="Remove the identifying data (name, home, consent, cards, phones, club rosters) of "
        "participants with no check-in and no new card or phone since 1 January of the year "
        "DIEMDANH_RETENTION_YEARS (default 2) before this one; their check-ins stay in every count, with "
        "their age group and gender. Safe to run again (nothing is removed twice); each run that removes "
        "something is in the audit log. Run it once a day or once a month, after the yearly report.",
    )
    keep.add_argument("--dry-run", action="store_true", help="only say how many would be removed")
    keep.set_defaults(func=cmd_retention)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
