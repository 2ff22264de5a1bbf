"""Migrations move existing data over: a database made by the previous version (0001) with check-ins in it
is upgraded to head, and every phone, check-in and attempt is still there in its new shape."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import create_engine, text
from sqlmodel import Session, select

from server.config import Settings
from server.db import _sqlalchemy_url, alembic_config, make_engine
from server.models import (
    Channel,
    CheckIn,
    CheckInAttempt,
    CheckInMode,
    Credential,
    CredentialKind,
    Event,
    Participant,
    Venue,
    VenuePlacement,
)
from server.services import attendance, places_history
from server.services.identities import device_credential, participant_for_device
from tests.conftest import BACKENDS, PG_URL, _admin_sql

TOKEN = "phone-token-of-an-old-version-0001"


@pytest.fixture(params=BACKENDS)
def fresh_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    """An empty database of its own (not the migrated template the other tests share)."""
    if request.param == "sqlite":
        yield Settings(env="development", database_url=f"sqlite:///{tmp_path / 'old.sqlite3'}")
        return
    head, _, name = PG_URL.rpartition("/")
    db_name = f"{name}_dd_migrate_{os.getpid()}"
    _admin_sql(PG_URL, f'DROP DATABASE IF EXISTS "{db_name}"')
    _admin_sql(PG_URL, f'CREATE DATABASE "{db_name}"')
    yield Settings(env="development", database_url=f"{head}/{db_name}")
    _admin_sql(PG_URL, f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')


def _old_data(settings: Settings) -> None:
    """What version 0001 stored: a phone's participant with its device hash, one without a phone."""
    at = datetime(2026, 4, 21, 1, 30, tzinfo=UTC).isoformat(sep=" ")
    engine = create_engine(_sqlalchemy_url(settings.database_url))
    statements = [
        "INSERT INTO org_unit (id, kind, code, code_system, name, path, created_at) "
        "VALUES (1, 'commune', '06253', 'gso', 'Xã Văn Quan', '/1/', :at)",
        "INSERT INTO venue (id, name, type, unit_id, address, active, created_at) "
        "VALUES (1, 'Thư viện xã Văn Quan', 'commune_library', 1, '', true, :at)",
        "INSERT INTO event (id, title, type, venue_id, starts_at, ends_at, campaign, description, status, "
        "created_at, updated_at) VALUES (1, 'Ngày hội đọc sách', 'reading_festival', 1, :at, :at, "
        "'reading_day', '', 'scheduled', :at, :at)",
        "INSERT INTO participant (id, device_hash, name, age_band, gender, created_at) "
        f"VALUES (1, '{hashlib.sha256(TOKEN.encode()).hexdigest()}', NULL, '25-59', 'female', :at)",
        "INSERT INTO participant (id, device_hash, name, age_band, gender, created_at) "
        "VALUES (2, NULL, 'Hoàng Văn Páo', '60+', 'male', :at)",
        "INSERT INTO check_in (id, event_id, participant_id, nonce, method, checked_in_at, venue_id, "
        "venue_type, commune_id, age_band, gender) VALUES "
        "(1, 1, 1, 'nonce-phone-1', 'qr', :at, 1, 'commune_library', 1, '25-59', 'female'), "
        "(2, 1, 2, 'nonce-staff-1', 'manual', :at, 1, 'commune_library', 1, '60+', 'male')",
        "INSERT INTO check_in_attempt (at, event_id, participant_id, nonce, method, outcome, check_in_id) "
        "VALUES (:at, 1, 1, 'nonce-phone-1', 'qr', 'accepted', 1), "
        "(:at, 1, 2, 'nonce-staff-1', 'manual', 'accepted', 2), "
        "(:at, NULL, NULL, 'x', 'api', 'code_invalid', NULL)",
    ]
    with engine.begin() as conn:
        for statement in statements:
            conn.execute(text(statement), {"at": at})
    engine.dispose()


def test_upgrade_from_0001_keeps_every_phone_check_in_and_attempt(fresh_settings: Settings) -> None:
    config = alembic_config(fresh_settings)
    command.upgrade(config, "0001")
    _old_data(fresh_settings)
    command.upgrade(config, "head")

    engine = make_engine(fresh_settings)
    with Session(engine) as session:
        phone = device_credential(session, TOKEN)
        assert phone is not None and phone.kind == CredentialKind.device and phone.participant_id == 1
        owner = participant_for_device(session, TOKEN)
        assert owner is not None and owner.id == 1, "the phone still checks in with one tap"
        assert session.exec(select(Credential)).all() == [phone], "no credential for the person without phone"
        named = session.get(Participant, 2)
        assert named is not None and named.search_name == "hoang van pao"

        records = {c.nonce: c for c in session.exec(select(CheckIn)).all()}
        assert records["nonce-phone-1"].channel == Channel.page
        assert records["nonce-phone-1"].credential_id == phone.id
        assert records["nonce-staff-1"].channel == Channel.staff_form
        assert records["nonce-staff-1"].credential_id is None
        for record in records.values():
            assert record.received_at == record.checked_in_at and not record.late

        channels = [a.channel for a in session.exec(select(CheckInAttempt).order_by(CheckInAttempt.id)).all()]
        assert channels == [Channel.page, Channel.staff_form, Channel.staff_api]
        event = session.get(Event, 1)
        assert event is not None and event.checkin_mode == CheckInMode.poster
        live = attendance.live_summary(session, 1)
        assert (live.visits, live.people, live.walk_ins) == (2, 2, 0)
    engine.dispose()


def test_upgrade_to_0006_gives_every_venue_one_open_placement(fresh_settings: Settings) -> None:
    config = alembic_config(fresh_settings)
    command.upgrade(config, "0001")
    _old_data(fresh_settings)
    command.upgrade(config, "head")

    engine = make_engine(fresh_settings)
    with Session(engine) as session:
        placements = session.exec(select(VenuePlacement)).all()
        assert [(p.venue_id, p.unit_id, p.valid_from, p.valid_to) for p in placements] == [(1, 1, None, None)]
        assert places_history.venue_unit_on(session, 1, date(2020, 1, 1)) == 1
        venue = session.get(Venue, 1)
        assert venue is not None and venue.closed_on is None
    engine.dispose()
