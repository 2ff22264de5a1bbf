"""The demo data set. A build takes seconds, so one test builds it once per backend and checks each fact."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import func
from sqlmodel import Session, SQLModel, col, select

from server.auth import authenticate
from server.config import Settings
from server.models import (
    BookRotation,
    Channel,
    CheckIn,
    CheckInAttempt,
    CheckInMode,
    Club,
    ClubMember,
    ClubType,
    Credential,
    CredentialKind,
    Event,
    EventStatus,
    EventType,
    Headcount,
    KioskDevice,
    LibraryChange,
    LibraryFigure,
    LibraryMetric,
    LinkKind,
    Meta,
    OrgUnit,
    Participant,
    ReportGroup,
    Role,
    Staff,
    UnitKind,
    UnitLink,
    Venue,
    VenueType,
)
from server.services import areas, demo, flood, indicators, library, report_groups, reports
from server.services.indicators import Kind, Status
from server.services.places_history import commune_on
from server.services.scans import check_in_window, code_for, event_from_code

# 23:30 in Lạng Sơn on the first day of Tết 2026: a quiet month and a late hour, and the demo still has an
# event open for check-in.
NOW = datetime(2026, 2, 17, 16, 30, tzinfo=UTC)
SIX_COMMUNES = ("Xã Văn Quan", "Xã Điềm He", "Xã Yên Phúc", "Xã Tri Lễ", "Xã Tân Đoàn", "Xã Khánh Khê")


def test_build_makes_a_believable_data_set_and_wipe_empties_it(session: Session, settings: Settings) -> None:
    assert not demo.has_data(session)
    logins = demo.build(session, settings, now=NOW)
    session.commit()
    assert demo.has_data(session)
    meta = session.get(Meta, "demo")
    assert meta is not None and meta.value == "1"

    _check_logins(session, logins)
    _check_places(session)
    events = {e.id: e for e in session.exec(select(Event)).all()}
    check_ins = list(session.exec(select(CheckIn)).all())
    _check_check_ins(session, settings, events, check_ins)
    _check_open_and_upcoming(session, settings, events, check_ins)
    _check_kiosks(session)
    _check_clubs(session, settings, events, check_ins)
    _check_library(session)
    _check_place_changes(session, settings, check_ins)
    _check_flood(session, events, check_ins)
    _check_indicators(session, settings)

    demo.wipe(session)
    assert not demo.has_data(session)
    for table in SQLModel.metadata.sorted_tables:
        assert session.exec(select(func.count()).select_from(table)).one() == 0, table.name


def _check_indicators(session: Session, settings: Settings) -> None:
    """Every indicator of the plan has a value for the current year (the running year to NOW, in February,
    its hardest window) against a base last year: for the six communes together, and for each commune,
    except participation where the commune the demo makes new this year has nothing to grow from."""
    admin = Staff(username="demo-test", role=Role.admin, unit_id=None, password_hash="!", active=False)
    today = NOW.astimezone(settings.tz).date()
    rules = indicators.load_rules(session)
    window = reports.report_window(today.year, until=None, today=today, cutoff=rules.cutoff)
    assert window.year == NOW.year and not window.complete
    area = areas.resolve_area(session, admin, "")
    for result in indicators.evaluate(session, admin, window, area, settings.tz, now=NOW).results:
        key = result.definition.key
        assert result.status != Status.no_base and result.value is not None, key
        if result.definition.kind == Kind.growth:
            assert result.value > 0 and result.previous and result.previous > 0, key
        else:
            assert result.denominator and result.previous_denominator, key
    # In February no club can have met in 9 months of the running year, so their share is 0 % of every house:
    # a value, not "no base". Over last year the rule is met by the clubs that meet most months.
    last_year = reports.report_window(today.year - 1, until=None, today=today, cutoff=rules.cutoff)
    active = indicators.evaluate(
        session, admin, last_year, area, settings.tz, definitions=[indicators.BY_KEY["active_houses"]]
    ).results[0]
    assert active.numerator and active.denominator and 0 < active.numerator < active.denominator

    six = {u.id: u.name for u in session.exec(select(OrgUnit).where(col(OrgUnit.name).in_(SIX_COMMUNES)))}
    assert len(six) == 6
    without_base = set()
    for definition in indicators.DEFINITIONS:
        rows = indicators.drill(session, admin, definition.key, window, area, settings.tz).communes
        by_commune = {row.key: row.result for row in rows if row.key in six}
        for commune_id, name in six.items():
            result = by_commune.get(commune_id)
            if result is None or result.status == Status.no_base or result.value is None:
                without_base.add((definition.key, name))
    newcomer = [name for name in SIX_COMMUNES if ("participation", name) in without_base]
    assert len(newcomer) == 1 and newcomer != ["Xã Văn Quan"], without_base
    assert without_base == {("participation", newcomer[0])}


def _check_library(session: Session) -> None:
    """Two years of figures for every public library, rotations, school libraries, and a correction."""
    public = session.exec(
        select(Venue.id).where(col(Venue.type).in_((VenueType.provincial_library, VenueType.commune_library)))
    ).all()
    last_year = library.monthly_sums(
        session, LibraryMetric.materials_served, date(2025, 1, 1), date(2025, 12, 31)
    )
    this_year = library.monthly_sums(
        session, LibraryMetric.materials_served, date(2026, 1, 1), date(2026, 12, 31)
    )
    assert set(last_year) == set(this_year) == set(public) and len(public) == 7
    assert session.exec(select(func.count()).select_from(LibraryFigure)).one() == 7 * 4 * (12 + 1)
    sent = library.rotation_copies(session, date(2025, 1, 1), date(2025, 12, 31))
    assert len(sent) >= 2 and all(copies > 0 for copies in sent.values())
    assert session.exec(select(func.count()).select_from(BookRotation)).one() >= 6
    schools = library.school_years(session, 2025)
    assert len(schools) == 13 and set(schools.values()) == {True, False}
    assert 0 < len(library.standard_since(session)) < 13
    corrected = session.exec(
        select(LibraryChange).where(
            col(LibraryChange.old_value).is_not(None), LibraryChange.entity == "figure"
        )
    ).all()
    assert len(corrected) == 2  # the digit too many, and its correction


def _check_place_changes(session: Session, settings: Settings, check_ins: list[CheckIn]) -> None:
    """A Khánh Khê village moved on 1/9/2025: its venue's records keep the commune of their own day."""
    (link,) = session.exec(select(UnitLink)).all()
    old, new = session.get(OrgUnit, link.from_unit_id), session.get(OrgUnit, link.unit_id)
    assert old is not None and new is not None
    assert (link.kind, link.effective_on, old.name) == (LinkKind.moved, date(2025, 9, 1), new.name)
    khanh_khe = session.exec(select(OrgUnit).where(OrgUnit.name == "Xã Khánh Khê")).one()
    assert old.parent_id == khanh_khe.id != new.parent_id and old.valid_to == date(2025, 8, 31)
    venue = session.exec(select(Venue).where(Venue.unit_id == new.id)).first()
    assert venue is not None and venue.id is not None
    assert commune_on(session, venue.id, date(2025, 8, 31)) == khanh_khe.id
    assert commune_on(session, venue.id, date(2025, 9, 1)) == new.parent_id
    theirs = [c for c in check_ins if c.venue_id == venue.id]
    assert theirs, "the moved village's cultural house has visits"
    sides = set()
    for c in theirs:
        before = c.checked_in_at.astimezone(settings.tz).date() < link.effective_on
        assert c.commune_id == (khanh_khe.id if before else new.parent_id)
        sides.add(before)
    assert sides == {True, False}, "visits on both sides of the move"
    group = session.exec(select(ReportGroup)).one()
    assert group.name == "Huyện Văn Quan cũ"
    assert {u.name for u in report_groups.group_units(session, group.id or 0)} == set(SIX_COMMUNES)


def _check_kiosks(session: Session) -> None:
    devices = session.exec(select(KioskDevice).order_by(col(KioskDevice.id))).all()
    assert [(d.token_hash is not None, d.revoked_at is not None) for d in devices] == [
        (True, False),
        (True, True),
    ]
    library = session.exec(select(Venue).where(Venue.name == "Thư viện xã Văn Quan")).one()
    assert {d.venue_id for d in devices} == {library.id}


def _check_logins(session: Session, logins: list[tuple[str, str, str]]) -> None:
    usernames = {username for username, _, _ in logins}
    assert {"admin", "vanquan", "thuvien.vanquan", "nvh.trile"} <= usernames
    assert {role for _, _, role in logins} == {"admin", "office", "organizer"}
    for username, password, role in logins:
        assert len(password) >= 10
        assert authenticate(session, username, password).role.value == role


def _check_places(session: Session) -> None:
    venue_types = {venue.type for venue in session.exec(select(Venue)).all()}
    assert venue_types == set(VenueType)
    province = session.exec(select(OrgUnit).where(OrgUnit.kind == UnitKind.province)).one()
    assert (province.code, province.code_system) == ("20", "gso")
    for name in SIX_COMMUNES:
        commune = session.exec(select(OrgUnit).where(OrgUnit.name == name)).one()
        villages = session.exec(select(OrgUnit).where(OrgUnit.parent_id == commune.id)).all()
        assert 4 <= len(villages) <= 7, name
        assert all(v.kind == UnitKind.village and v.path.startswith(commune.path) for v in villages)


def _check_check_ins(
    session: Session, settings: Settings, events: dict[int | None, Event], check_ins: list[CheckIn]
) -> None:
    assert 2000 <= len(check_ins) <= 6000
    people = {c.participant_id for c in check_ins}
    assert len(people) < len(check_ins) / 2, "many people come back"
    # Every check-in went through the engine (it logs each attempt), and none was refused.
    logged = session.exec(select(CheckInAttempt.action, CheckInAttempt.outcome)).all()
    walk_ins = session.exec(select(Headcount)).all()
    assert Counter(logged) == {
        ("check_in", "accepted"): len(check_ins),
        ("headcount", "accepted"): len(walk_ins),
    }
    for c in check_ins:
        event = events[c.event_id]
        assert event.status == EventStatus.scheduled
        assert event.starts_at <= c.checked_in_at <= min(event.ends_at, NOW)
        assert c.checked_in_at <= c.received_at <= NOW

    months = Counter(c.checked_in_at.astimezone(settings.tz).strftime("%Y-%m") for c in check_ins)
    assert {NOW.year - 1, NOW.year} <= {int(month[:4]) for month in months}
    for back in range(1, 13):  # each of the 12 months before NOW's
        year, month = divmod(NOW.year * 12 + NOW.month - 1 - back, 12)
        assert months[f"{year}-{month + 1:02d}"] > 0, (year, month + 1)
    assert months["2025-04"] > 3 * months["2025-02"] and months["2025-10"] > 2 * months["2025-07"]

    by_staff = [c for c in check_ins if c.channel == Channel.staff_form]
    assert 0 < len(by_staff) < len(check_ins) / 4
    assert all(c.recorded_by_id is not None for c in by_staff)
    cards = session.exec(select(Credential).where(Credential.kind == CredentialKind.card)).all()
    card_ids = {card.id for card in cards}
    by_card = [c for c in by_staff if c.credential_id in card_ids]
    assert len(cards) == 6 * 24 and by_card, "regulars without a phone hold cards and use them"
    holders = Counter(c.participant_id for c in by_card)
    assert max(holders.values()) > 1, "a card holder who comes again stays one person"
    typed_later = [c for c in by_staff if c.credential_id is None]
    assert typed_later and all(c.late for c in typed_later), "paper registers are typed in the next day"
    phones = session.exec(select(Credential).where(Credential.kind == CredentialKind.device)).all()
    by_phone = [c for c in check_ins if c.channel == Channel.page]
    assert {c.credential_id for c in by_phone} <= {p.id for p in phones} and not any(c.late for c in by_phone)
    assert walk_ins and all(h.delta == 1 and h.recorded_by_id for h in walk_ins)
    assert not {h.event_id for h in walk_ins} - {c.event_id for c in check_ins} - set(events)
    named = session.exec(select(Participant).where(col(Participant.name).is_not(None))).all()
    assert named and not any(p.age_band.is_child for p in named)

    cancelled = [e for e in events.values() if e.status == EventStatus.cancelled]
    assert 1 <= len(cancelled) <= 2
    assert not {e.id for e in cancelled} & {c.event_id for c in check_ins}


def _check_open_and_upcoming(
    session: Session, settings: Settings, events: dict[int | None, Event], check_ins: list[CheckIn]
) -> None:
    scheduled = [e for e in events.values() if e.status == EventStatus.scheduled]
    windows = {e.id: check_in_window(e, settings) for e in scheduled}
    open_now = [events[i] for i, (opens, closes) in windows.items() if opens <= NOW <= closes]
    assert open_now, "an event is open for check-in when the demo is built"
    assert any(e.checkin_mode == CheckInMode.both for e in open_now), "it also shows a rotating code"
    for event in open_now:
        assert event_from_code(session, settings, code_for(event, settings), now=NOW).id == event.id
    upcoming = [e for e in events.values() if e.starts_at > NOW]
    # Clubs' schedules make their sessions 8 weeks ahead; the other events are planned three weeks ahead.
    assert upcoming and all(e.starts_at < NOW + timedelta(days=22) for e in upcoming if e.club_id is None)
    assert all(e.starts_at <= NOW + timedelta(weeks=8) for e in upcoming)
    assert not {e.id for e in upcoming} & {c.event_id for c in check_ins}
    assert all(e.expected_audience for e in events.values() if e.club_id is None)


def _check_clubs(
    session: Session, settings: Settings, events: dict[int | None, Event], check_ins: list[CheckIn]
) -> None:
    all_clubs = session.exec(select(Club).order_by(col(Club.id))).all()
    assert len(all_clubs) >= 2 and {c.type for c in all_clubs} == set(ClubType)
    came = Counter(events[c.event_id].club_id for c in check_ins)
    for club in all_clubs:
        sessions = [e for e in events.values() if e.club_id == club.id]
        assert all(e.type == EventType.club_session and e.club_slot for e in sessions)
        assert len({e.club_slot for e in sessions}) == len(sessions), "one session per slot"
        past = [e for e in sessions if e.ends_at < NOW]
        assert 50 <= len(past) <= 54, "weekly for the past year"
        assert any(NOW < e.starts_at <= NOW + timedelta(weeks=8) for e in sessions), "and ahead"
        assert came[club.id] > 0
        months = {
            events[c.event_id].starts_at.astimezone(settings.tz).strftime("%Y-%m")
            for c in check_ins
            if events[c.event_id].club_id == club.id
        }
        members = session.exec(select(ClubMember).where(ClubMember.club_id == club.id)).all()
        assert members, club.name
        if club.name == "CLB Hát sli, lượn":
            assert len(months) <= 4, "meets in only a few months"
        if club.name == "CLB Hát then - đàn tính":
            assert len(months) >= 11, "meets in most months"
    first = all_clubs[0]
    moved = [e for e in events.values() if e.club_id == first.id and e.club_slot != e.starts_at]
    assert len(moved) == 1 and moved[0].starts_at - moved[0].club_slot == timedelta(days=1)


def _check_flood(session: Session, events: dict, check_ins: list[CheckIn]) -> None:  # type: ignore[type-arg]
    """One event (the exhibition open now) has a batch from one address flagged suspicious, and only it:
    the demo's own phones each come from their own connection."""
    flagged = {c.event_id for c in check_ins if c.suspicious}
    assert len(flagged) == 1
    (event_id,) = flagged
    assert events[event_id].title == demo.TODAY[0][1]
    view = flood.overview(session, event_id)
    assert len(view.groups) == 1 and view.groups[0].count > 20 and view.excluded == 0
