"""The retention period: `diemdanh retention` removes the identifying data of people not seen for
DIEMDANH_RETENTION_YEARS whole statistical years; the counts stay; a second run removes nothing."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from sqlmodel import Session, select

from server.__main__ import main
from server.config import Settings, SettingsError
from server.models import (
    AuditEntry,
    Channel,
    CheckIn,
    ClubMember,
    Credential,
    CredentialKind,
    Event,
    Participant,
)
from server.services import attendance, retention
from tests.factories import count_rows, make_event, make_participant, make_tree, make_venue

TODAY = date(2026, 6, 1)  # with 2 years: people last seen before 1/1/2024 lose their names


def _visit(session: Session, event: Event, person: Participant, at: datetime) -> None:
    session.add(
        CheckIn(
            event_id=event.id or 0,
            participant_id=person.id or 0,
            nonce=f"n-{event.id}-{person.id}",
            channel=Channel.staff_form,
            checked_in_at=at,
            received_at=at,
            venue_id=event.venue_id,
            venue_type="village_cultural_house",
            age_band=person.age_band,
            gender=person.gender,
        )
    )
    session.commit()


def _world(session: Session) -> dict[str, object]:
    tree = make_tree(session)
    venue = make_venue(session, tree["village"])
    old = make_event(session, venue, starts_at=datetime(2023, 4, 21, 2, tzinfo=UTC))
    recent = make_event(session, venue, starts_at=datetime(2025, 4, 21, 2, tzinfo=UTC))
    created = {"created_at": datetime(2023, 4, 21, 2, tzinfo=UTC)}
    gone = make_participant(session, name="Hoàng Thị Cũ", home_unit=tree["village"], **created)
    back = make_participant(session, name="Vi Văn Lại", home_unit=tree["village"], **created)
    carded = make_participant(session, name="Lộc Thị Thẻ", **created)
    session.add(
        Credential(
            participant_id=gone.id or 0,
            kind=CredentialKind.card,
            lookup="1234567",
            issued_at=created["created_at"],
        )
    )
    session.add(
        Credential(
            participant_id=carded.id or 0,
            kind=CredentialKind.card,
            lookup="7654321",
            issued_at=datetime(2024, 3, 1, tzinfo=UTC),
        )
    )
    session.commit()
    for person in (gone, back, carded):
        _visit(session, old, person, datetime(2023, 4, 21, 3, tzinfo=UTC))
    _visit(session, recent, back, datetime(2025, 4, 21, 3, tzinfo=UTC))
    return {"old": old, "gone": gone, "back": back, "carded": carded}


def _names(session: Session) -> set[str | None]:
    session.commit()
    session.expire_all()
    return {p.name for p in session.exec(select(Participant)).all()}


def test_only_people_not_seen_since_the_cutoff_lose_their_identifying_data(
    session: Session, settings: Settings
) -> None:
    world = _world(session)
    before = attendance.live_summary(session, world["old"].id or 0)  # type: ignore[attr-defined]
    result = retention.run(session, settings, today=TODAY)
    assert (result.cutoff, result.found, result.erased) == (date(2024, 1, 1), 1, 1)
    assert _names(session) == {None, "Vi Văn Lại", "Lộc Thị Thẻ"}
    gone = session.get(Participant, world["gone"].id)  # type: ignore[attr-defined]
    assert gone is not None and gone.home_unit_id is None and gone.search_name == "" and gone.erased_at
    assert gone.age_band.value == "25-59" and gone.gender.value == "female"  # the reports need them
    assert session.exec(select(Credential).where(Credential.participant_id == gone.id)).all() == []
    assert count_rows(session, CheckIn) == 4
    after = attendance.live_summary(session, world["old"].id or 0)  # type: ignore[attr-defined]
    assert (after.visits, after.people, after.by_age) == (before.visits, before.people, before.by_age)
    entry = session.exec(select(AuditEntry)).one()
    assert entry.action == "retention_run" and '"participants": 1' in entry.detail


def test_a_dry_run_changes_nothing_and_a_second_run_removes_nothing(
    session: Session, settings: Settings
) -> None:
    _world(session)
    assert retention.run(session, settings, today=TODAY, dry_run=True).found == 1
    assert (
        _names(session) == {"Hoàng Thị Cũ", "Vi Văn Lại", "Lộc Thị Thẻ"}
        and count_rows(session, AuditEntry) == 0
    )
    assert retention.run(session, settings, today=TODAY).erased == 1
    again = retention.run(session, settings, today=TODAY)
    assert (again.found, again.erased) == (0, 0)
    assert count_rows(session, AuditEntry) == 1


def test_a_longer_period_keeps_more(session: Session, settings: Settings) -> None:
    _world(session)
    longer = Settings(**{**settings.__dict__, "retention_years": 3})
    assert retention.run(session, longer, today=TODAY).found == 0
    later = retention.run(session, settings, today=date(2028, 1, 1))  # cut-off 1/1/2026: all three
    assert later.found == 3 and _names(session) == {None}


def test_club_rosters_go_with_the_name(session: Session, settings: Settings) -> None:
    from server.models import Club, ClubType

    world = _world(session)
    club = Club(venue_id=world["old"].venue_id, name="CLB đọc sách", type=ClubType.club)  # type: ignore[attr-defined]
    session.add(club)
    session.commit()
    session.add(ClubMember(club_id=club.id or 0, participant_id=world["gone"].id or 0))  # type: ignore[attr-defined]
    session.commit()
    retention.run(session, settings, today=TODAY)
    assert count_rows(session, ClubMember) == 0


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> None:
    monkeypatch.setenv("DIEMDANH_ENV", "development")
    monkeypatch.setenv("DIEMDANH_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("DIEMDANH_DATA_DIR", str(settings.data_dir))


@pytest.mark.usefixtures("cli_env")
def test_the_command_runs_it_with_a_dry_run_first(
    session: Session, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _world(session)  # today is in 2026 or later: 2023 is more than two whole years ago
    assert main(["retention", "--dry-run"]) == 0
    assert "would lose" in capsys.readouterr().out and None not in _names(session)
    assert main(["retention"]) == 0
    out = capsys.readouterr().out
    assert "lost" in out and "retention: 2 years" in out and None in _names(session)
    monkeypatch.setenv("DIEMDANH_RETENTION_YEARS", "0")
    with pytest.raises(SystemExit):
        main(["retention"])


def test_the_setting_has_a_range() -> None:
    assert Settings(env="development").retention_years == 2
    assert Settings.from_env({"DIEMDANH_RETENTION_YEARS": "5"}, env="development").retention_years == 5
    for bad in (0, 51, -1):
        with pytest.raises(SettingsError, match="DIEMDANH_RETENTION_YEARS"):
            Settings(env="development", retention_years=bad)
