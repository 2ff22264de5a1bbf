"""Tables and the vocabularies they use.

Times (`*_at`) are timezone-aware and stored in UTC (sqlmodel's UTCDateTime refuses naive values);
pages convert to the configured time zone at the edge.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, tzinfo
from enum import StrEnum

from sqlalchemy import Column, Index, UniqueConstraint
from sqlalchemy import Enum as SAEnum
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    """Now, aware, in UTC."""
    return datetime.now(UTC)


# The years a date typed into the app may lie in (events, scan times): wider than any real programme,
# narrow enough that shifting by a time zone or a check-in margin never leaves what Python can hold.
FIRST_YEAR = 2000
LAST_YEAR = 2100


def in_year_range(value: date) -> bool:
    return FIRST_YEAR <= value.year <= LAST_YEAR


def in_zone(value: datetime, tz: tzinfo) -> datetime:
    """`value` in the zone `tz`; a stored time at the very edge of the calendar (a row from before the
    year range was checked) stays in UTC rather than overflowing."""
    try:
        return value.astimezone(tz)
    except OverflowError:
        return value


def shifted(value: datetime, delta: timedelta) -> datetime:
    """`value + delta`, stopping at the calendar's first or last moment instead of overflowing."""
    try:
        return value + delta
    except OverflowError:
        return (datetime.max if delta > timedelta(0) else datetime.min).replace(tzinfo=value.tzinfo)


class UnitKind(StrEnum):
    province = "province"
    commune = "commune"
    village = "village"


class VenueType(StrEnum):
    provincial_library = "provincial_library"
    commune_library = "commune_library"
    school_library = "school_library"
    armed_forces_library = "armed_forces_library"
    culture_sport_centre = "culture_sport_centre"
    village_cultural_house = "village_cultural_house"
    community_learning_centre = "community_learning_centre"
    post_culture_point = "post_culture_point"
    legal_bookcase = "legal_bookcase"


class EventType(StrEnum):
    reading_festival = "reading_festival"
    contest = "contest"
    club_session = "club_session"
    exhibition = "exhibition"
    talk = "talk"
    book_donation = "book_donation"
    library_visit = "library_visit"
    other = "other"


class Campaign(StrEnum):
    reading_day = "reading_day"  # 21/4 Vietnam Book and Reading Culture Day
    world_book_day = "world_book_day"  # 23/4
    museum_day = "museum_day"  # 18/5
    heritage_day = "heritage_day"  # 23/11
    lifelong_learning_week = "lifelong_learning_week"  # early October
    none = "none"


class AgeBand(StrEnum):
    under_6 = "0-5"
    from_6 = "6-11"
    from_12 = "12-15"
    from_16 = "16-24"
    from_25 = "25-59"
    from_60 = "60+"

    @property
    def is_child(self) -> bool:
        """Under 16: the law's child, from whom we take no name without a guardian's recorded consent."""
        return self in (AgeBand.under_6, AgeBand.from_6, AgeBand.from_12)


class Gender(StrEnum):
    female = "female"
    male = "male"
    unspecified = "unspecified"


class Role(StrEnum):
    admin = "admin"
    office = "office"
    organizer = "organizer"


class EventStatus(StrEnum):
    scheduled = "scheduled"
    cancelled = "cancelled"


class Channel(StrEnum):
    """The door a check-in came through; every door calls the same engine (services/checkin.py)."""

    page = "page"  # the resident's page /c/<code>
    public_api = "public_api"  # POST /api/v1/checkins
    staff_form = "staff_form"  # the organizer's event page
    staff_api = "staff_api"  # POST /api/v1/events/{id}/checkins
    kiosk = "kiosk"  # the organizer's phone reading personal cards
    batch = "batch"  # POST /api/v1/checkins/batch (an outbox synced later)


class CredentialKind(StrEnum):
    device = "device"  # the random token a resident's phone keeps (stored as its sha256)
    card = "card"  # a printed personal card's number


class ClubType(StrEnum):
    club = "club"  # câu lạc bộ
    talent_class = "talent_class"  # lớp năng khiếu
    interest_group = "interest_group"  # nhóm sở thích


class CheckInMode(StrEnum):
    """Which codes open an event's check-in: the printed poster, a code rotating on a screen, or both."""

    poster = "poster"
    rotating = "rotating"
    both = "both"


def _enum(kind: type[StrEnum], *, nullable: bool = False) -> Column:
    # Stored as the value in a VARCHAR (no native ENUM, no CHECK), so adding a value needs no migration.
    return Column(
        SAEnum(
            kind,
            native_enum=False,
            create_constraint=False,
            length=32,
            values_callable=lambda members: [m.value for m in members],
        ),
        nullable=nullable,
    )


class OrgUnit(SQLModel, table=True):
    """A node of the place tree: province > commune > village. Never edited into another unit: a
    reorganisation closes `valid_to` and creates new nodes, so old check-ins keep pointing at the day's."""

    __tablename__ = "org_unit"
    __table_args__ = (UniqueConstraint("code_system", "code", "valid_from"),)

    id: int | None = Field(default=None, primary_key=True)
    kind: UnitKind = Field(sa_column=_enum(UnitKind))
    code: str = Field(max_length=32)
    code_system: str = Field(max_length=16)
    name: str = Field(max_length=200)
    parent_id: int | None = Field(default=None, foreign_key="org_unit.id", index=True)
    # "/1/7/42/": ids from the root down to this node, for "this unit and all below it".
    path: str = Field(default="", max_length=200, index=True)
    valid_from: date | None = None
    valid_to: date | None = None
    created_at: datetime = Field(default_factory=utcnow)


class UnitSource(SQLModel, table=True):
    """A unit this one was made from (for example a pre-2025 commune merged into a new one)."""

    __tablename__ = "unit_source"

    id: int | None = Field(default=None, primary_key=True)
    unit_id: int = Field(foreign_key="org_unit.id", index=True)
    code: str = Field(max_length=32)
    code_system: str = Field(max_length=16)
    name: str = Field(max_length=200)
    note: str = Field(default="", max_length=200)


class LinkKind(StrEnum):
    """How a unit version was made from another (services/places_history.py)."""

    renamed = "renamed"
    moved = "moved"
    merged = "merged"
    split_up = "split"  # not `split`: that would hide str.split


class UnitLink(SQLModel, table=True):
    """A unit version made from another on a day: a rename or move (new version of the same village), a
    merge (the kept unit from the closed one) or a split (each part from the closed whole)."""

    __tablename__ = "unit_link"

    id: int | None = Field(default=None, primary_key=True)
    unit_id: int = Field(foreign_key="org_unit.id", index=True)
    from_unit_id: int = Field(foreign_key="org_unit.id", index=True)
    kind: LinkKind = Field(sa_column=_enum(LinkKind))
    effective_on: date
    created_by_id: int | None = Field(default=None, foreign_key="staff.id")
    created_at: datetime = Field(default_factory=utcnow)


class Venue(SQLModel, table=True):
    """A library, cultural house, ... Its id never changes; `unit_id` is where it is now, and
    `VenuePlacement` where it was on any day."""

    __tablename__ = "venue"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200)
    type: VenueType = Field(sa_column=_enum(VenueType))
    unit_id: int = Field(foreign_key="org_unit.id", index=True)
    code: str | None = Field(default=None, max_length=32, unique=True)
    address: str = Field(default="", max_length=300)
    active: bool = True
    closed_on: date | None = None  # the first day it is closed (active is False from then on)
    created_at: datetime = Field(default_factory=utcnow)


class VenuePlacement(SQLModel, table=True):
    """The unit a venue belonged to from `valid_from` to `valid_to` (both included; NULL: no bound)."""

    __tablename__ = "venue_placement"

    id: int | None = Field(default=None, primary_key=True)
    venue_id: int = Field(foreign_key="venue.id", index=True)
    unit_id: int = Field(foreign_key="org_unit.id", index=True)
    valid_from: date | None = None
    valid_to: date | None = None
    created_at: datetime = Field(default_factory=utcnow)


class VenueName(SQLModel, table=True):
    """A name a venue had until `valid_to` (included); the current name is `Venue.name`."""

    __tablename__ = "venue_name"

    id: int | None = Field(default=None, primary_key=True)
    venue_id: int = Field(foreign_key="venue.id", index=True)
    name: str = Field(max_length=200)
    valid_to: date
    created_by_id: int | None = Field(default=None, foreign_key="staff.id")
    created_at: datetime = Field(default_factory=utcnow)


class ReportGroup(SQLModel, table=True):
    """A saved set of units reported together, for example a former district's communes."""

    __tablename__ = "report_group"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200)
    description: str = Field(default="", max_length=1000)
    created_by_id: int | None = Field(default=None, foreign_key="staff.id")
    created_at: datetime = Field(default_factory=utcnow)


class ReportGroupMember(SQLModel, table=True):
    __tablename__ = "report_group_member"
    __table_args__ = (UniqueConstraint("group_id", "unit_id", name="uq_report_group_member"),)

    id: int | None = Field(default=None, primary_key=True)
    group_id: int = Field(foreign_key="report_group.id", index=True)
    unit_id: int = Field(foreign_key="org_unit.id", index=True)


class Staff(SQLModel, table=True):
    __tablename__ = "staff"

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(max_length=64, unique=True)
    full_name: str = Field(default="", max_length=200)
    password_hash: str = Field(max_length=200)
    role: Role = Field(sa_column=_enum(Role))
    unit_id: int | None = Field(default=None, foreign_key="org_unit.id")
    active: bool = True
    created_at: datetime = Field(default_factory=utcnow)


class StaffSession(SQLModel, table=True):
    """Server side of a login: the short-lived JWT cookie names it, so logout and revocation work."""

    __tablename__ = "staff_session"

    id: str = Field(primary_key=True, max_length=43)
    staff_id: int = Field(foreign_key="staff.id", index=True)
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime
    revoked_at: datetime | None = None


class LoginThrottle(SQLModel, table=True):
    """Failed logins counted under one key: an account at an address, an account, or an address
    (services/login_throttle.py). Rows are forgotten a while after their last failure."""

    __tablename__ = "login_throttle"

    key: str = Field(primary_key=True, max_length=200)
    failures: int = 0
    last_failure_at: datetime = Field(index=True)
    locked_until: datetime | None = None


class ApiToken(SQLModel, table=True):
    __tablename__ = "api_token"

    id: int | None = Field(default=None, primary_key=True)
    staff_id: int = Field(foreign_key="staff.id", index=True)
    name: str = Field(max_length=100)
    prefix: str = Field(max_length=12)
    token_hash: str = Field(max_length=64, unique=True)
    # Read-only: refused on anything but GET and HEAD (auth.staff_from_api_token).
    read_only: bool = False
    created_at: datetime = Field(default_factory=utcnow)
    last_used_at: datetime | None = None
    # Set by its owner, or for every token of an account whose password changes or that is deactivated.
    revoked_at: datetime | None = None


class Club(SQLModel, table=True):
    """A club, talent class or interest group meeting at a venue. Its schedule (weekdays, a local start
    time, a duration, from and until dates) makes its sessions: ordinary events with `Event.club_id`."""

    __tablename__ = "club"

    id: int | None = Field(default=None, primary_key=True)
    venue_id: int = Field(foreign_key="venue.id", index=True)
    name: str = Field(max_length=200)
    type: ClubType = Field(sa_column=_enum(ClubType))
    leader_name: str = Field(default="", max_length=200)
    description: str = Field(default="", max_length=2000)
    active: bool = True
    # The schedule: weekdays as digits 0-6 (Monday is 0), e.g. "6" for Sundays or "1,3"; empty means none.
    weekdays: str = Field(default="", max_length=16)
    start_time: time | None = None  # local wall-clock time (settings.tz)
    duration_minutes: int = 90
    schedule_from: date | None = None
    schedule_until: date | None = None
    created_by_id: int | None = Field(default=None, foreign_key="staff.id")
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class ClubMember(SQLModel, table=True):
    """A participant on a club's roster (they gave consent when their profile was made)."""

    __tablename__ = "club_member"
    __table_args__ = (UniqueConstraint("club_id", "participant_id", name="uq_club_member"),)

    id: int | None = Field(default=None, primary_key=True)
    club_id: int = Field(foreign_key="club.id", index=True)
    participant_id: int = Field(foreign_key="participant.id", index=True)
    joined_at: datetime = Field(default_factory=utcnow)
    added_by_id: int | None = Field(default=None, foreign_key="staff.id")


class Event(SQLModel, table=True):
    __tablename__ = "event"
    __table_args__ = (
        Index("ix_event_venue_starts", "venue_id", "starts_at"),
        # One session per schedule slot: generating again never duplicates, moving one keeps its slot.
        UniqueConstraint("club_id", "club_slot", name="uq_event_club_slot"),
    )

    id: int | None = Field(default=None, primary_key=True)
    title: str = Field(max_length=200)
    type: EventType = Field(sa_column=_enum(EventType))
    venue_id: int = Field(foreign_key="venue.id")
    starts_at: datetime = Field(index=True)
    ends_at: datetime
    campaign: Campaign = Field(sa_column=_enum(Campaign))
    expected_audience: int | None = None
    description: str = Field(default="", max_length=2000)
    status: EventStatus = Field(sa_column=_enum(EventStatus))
    checkin_mode: CheckInMode = Field(default=CheckInMode.poster, sa_column=_enum(CheckInMode))
    # A club's session: the club, and the schedule slot (UTC start) it was generated for, which stays put
    # when the session is moved, so the schedule does not bring the old time back.
    club_id: int | None = Field(default=None, foreign_key="club.id", index=True)
    club_slot: datetime | None = None
    created_by_id: int | None = Field(default=None, foreign_key="staff.id")
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class Participant(SQLModel, table=True):
    """A resident as the app knows them: anonymous by default (age band, gender, home unit). They are
    recognised by their credentials (phone, personal cards) or found by staff by name."""

    __tablename__ = "participant"

    id: int | None = Field(default=None, primary_key=True)
    name: str | None = Field(default=None, max_length=200)
    # The name without diacritics, lower case: staff type "nguyen van" on a phone keyboard.
    search_name: str = Field(default="", max_length=200, index=True)
    age_band: AgeBand = Field(sa_column=_enum(AgeBand))
    gender: Gender = Field(sa_column=_enum(Gender))
    home_unit_id: int | None = Field(default=None, foreign_key="org_unit.id")
    # Where they first told us who they are (the unit of the event's venue, or of the staff member or venue
    # that registered them): staff of that place, or of the home unit, may see the name (services/names.py).
    name_unit_id: int | None = Field(default=None, foreign_key="org_unit.id")
    consent_at: datetime | None = None
    consent_version: str | None = Field(default=None, max_length=16)
    created_at: datetime = Field(default_factory=utcnow)
    # When their identifying data was removed (on request, or by the retention period): services/rights.py.
    erased_at: datetime | None = None


class Credential(SQLModel, table=True):
    """One way a participant is recognised; revocable. A phone's device token (as its sha256) or a
    personal card's number (kept readable: it is printed on the card and reprinted from here)."""

    __tablename__ = "credential"
    __table_args__ = (UniqueConstraint("kind", "lookup", name="uq_credential_kind_lookup"),)

    id: int | None = Field(default=None, primary_key=True)
    participant_id: int = Field(foreign_key="participant.id", index=True)
    kind: CredentialKind = Field(sa_column=_enum(CredentialKind))
    lookup: str = Field(max_length=64)
    # Cards: the venue that issued it (printed on the card, and the organizers who may manage it).
    venue_id: int | None = Field(default=None, foreign_key="venue.id", index=True)
    issued_by_id: int | None = Field(default=None, foreign_key="staff.id")
    issued_at: datetime = Field(default_factory=utcnow)
    revoked_at: datetime | None = None
    revoked_by_id: int | None = Field(default=None, foreign_key="staff.id")


class CheckIn(SQLModel, table=True):
    """One accepted check-in. Place, age band and gender are copied as they were on the day.
    `checked_in_at` is when the person came (the claimed scan time), which reports count by;
    `received_at` is when it reached the server (later for an outbox or a paper register)."""

    __tablename__ = "check_in"
    __table_args__ = (
        UniqueConstraint("event_id", "participant_id", name="uq_check_in_event_participant"),
        Index("ix_check_in_at", "checked_in_at"),
        Index("ix_check_in_flood", "event_id", "source", "received_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    event_id: int = Field(foreign_key="event.id", index=True)
    participant_id: int = Field(foreign_key="participant.id", index=True)
    nonce: str = Field(max_length=64, unique=True)
    # sha256 of what was asked (event, person, claimed time): the same key with other content is refused.
    fingerprint: str | None = Field(default=None, max_length=64)
    channel: Channel = Field(sa_column=_enum(Channel))
    credential_id: int | None = Field(default=None, foreign_key="credential.id")
    checked_in_at: datetime
    received_at: datetime
    late: bool = False
    recorded_by_id: int | None = Field(default=None, foreign_key="staff.id")
    venue_id: int = Field(foreign_key="venue.id")
    venue_type: VenueType = Field(sa_column=_enum(VenueType))
    commune_id: int | None = Field(default=None, foreign_key="org_unit.id")
    village_id: int | None = Field(default=None, foreign_key="org_unit.id")
    age_band: AgeBand = Field(sa_column=_enum(AgeBand))
    gender: Gender = Field(sa_column=_enum(Gender))
    # Flooding (services/flood.py): the keyed hash of the address that brought a new person from an
    # anonymous phone, whether it came over that address's budget, and the exclusion that took it out of
    # every count (NULL: it counts).
    source: str | None = Field(default=None, max_length=16)
    suspicious: bool = False
    excluded_by_id: int | None = Field(default=None, foreign_key="check_in_exclusion.id", index=True)


class CheckInExclusion(SQLModel, table=True):
    """One organizer's or officer's action that took suspicious check-ins of an event out of every count,
    and its undoing: who, when, which (all suspicious ones, or one source in one minute) and how many."""

    __tablename__ = "check_in_exclusion"

    id: int | None = Field(default=None, primary_key=True)
    event_id: int = Field(foreign_key="event.id", index=True)
    source: str | None = Field(default=None, max_length=16)  # None: every source
    minute: datetime | None = None  # the minute of arrival (UTC); None: every minute
    count: int
    excluded_by_id: int = Field(foreign_key="staff.id")
    excluded_at: datetime = Field(default_factory=utcnow)
    undone_by_id: int | None = Field(default=None, foreign_key="staff.id")
    undone_at: datetime | None = None


class Headcount(SQLModel, table=True):
    """One change (+n or -n) of an event's count of people who did not check in (children with their
    parents, passers-by). Visits, never people. Each row is also the log of who changed the count."""

    __tablename__ = "headcount"

    id: int | None = Field(default=None, primary_key=True)
    event_id: int = Field(foreign_key="event.id", index=True)
    delta: int
    age_band: AgeBand | None = Field(default=None, sa_column=_enum(AgeBand, nullable=True))
    gender: Gender | None = Field(default=None, sa_column=_enum(Gender, nullable=True))
    nonce: str = Field(max_length=64, unique=True)
    fingerprint: str = Field(max_length=64)
    channel: Channel = Field(sa_column=_enum(Channel))
    counted_at: datetime = Field(index=True)
    received_at: datetime
    recorded_by_id: int | None = Field(default=None, foreign_key="staff.id")
    venue_id: int = Field(foreign_key="venue.id")
    venue_type: VenueType = Field(sa_column=_enum(VenueType))
    commune_id: int | None = Field(default=None, foreign_key="org_unit.id")
    village_id: int | None = Field(default=None, foreign_key="org_unit.id")


class VisitDay(SQLModel, table=True):
    """Kept aggregate of what counts (services/rollup.py, always equal to a recount of
    counting.visit_rows): per local day, record kind, event and place as stored on the records, the
    visits and, for check-ins, roaring bitmaps of the participants (plain, and with their age band or
    gender in the high bits). Walk-in rows carry their age band and gender in the key instead."""

    __tablename__ = "visit_day"
    __table_args__ = (Index("ix_visit_day_day", "day", "venue_type"),)

    id: int | None = Field(default=None, primary_key=True)
    day: date  # local day (VisitDayState.tz) of the claimed scan time or the time counted
    kind: str = Field(max_length=16)  # counting.CHECK_IN or counting.WALK_IN
    event_id: int = Field(foreign_key="event.id", index=True)
    venue_id: int = Field(foreign_key="venue.id")
    venue_type: VenueType = Field(sa_column=_enum(VenueType))
    commune_id: int | None = Field(default=None, foreign_key="org_unit.id")
    village_id: int | None = Field(default=None, foreign_key="org_unit.id")
    age_band: AgeBand | None = Field(default=None, sa_column=_enum(AgeBand, nullable=True))  # walk-ins
    gender: Gender | None = Field(default=None, sa_column=_enum(Gender, nullable=True))  # walk-ins
    weight: int  # visits: check-ins, or the sum of the headcount changes
    people: bytes | None = None  # check-ins: participant ids
    ages: bytes | None = None  # check-ins: age band index << 32 | participant id (64-bit)
    genders: bytes | None = None  # check-ins: gender index << 32 | participant id (64-bit)


class VisitDayState(SQLModel, table=True):
    """How far visit_day goes: every counted check-in and headcount with an id up to these (one row)."""

    __tablename__ = "visit_day_state"

    id: int = Field(default=1, primary_key=True)
    tz: str = Field(max_length=64)  # the time zone of visit_day.day; another one rebuilds it
    version: int = 0  # moves at every fold, so a reader can tell that one happened while it read
    check_in_id: int = 0
    headcount_id: int = 0


class VisitDayStale(SQLModel, table=True):
    """An event whose counted check-ins changed after they were rolled up (a flood excluded or put back):
    read from the records until visit_day is rebuilt for it. Not unique: a mark made while a rebuild runs
    survives it."""

    __tablename__ = "visit_day_stale"

    id: int | None = Field(default=None, primary_key=True)
    event_id: int = Field(foreign_key="event.id", index=True)


class CheckInAttempt(SQLModel, table=True):
    """Every check-in or headcount attempt, accepted or refused, for audit and abuse tracking. The same
    request sent again (same key, event, participant, channel, action and outcome: a replay, or the same
    refusal) is counted on its first row (`repeats`, `last_at`) instead of stored again. Rows whose
    `last_at` is older than DIEMDANH_ATTEMPT_LOG_DAYS are folded into CheckInAttemptSummary by
    `diemdanh prune-attempts`."""

    __tablename__ = "check_in_attempt"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow, index=True)  # the first time
    event_id: int | None = Field(default=None, index=True)
    participant_id: int | None = None
    nonce: str | None = Field(default=None, max_length=64, index=True)
    channel: Channel = Field(sa_column=_enum(Channel))
    action: str = Field(default="check_in", max_length=16)  # check_in or headcount
    outcome: str = Field(max_length=32)
    check_in_id: int | None = None
    staff_id: int | None = None
    repeats: int = 1  # how many times this attempt was made (1: once)
    last_at: datetime = Field(default_factory=utcnow, index=True)  # the last time


class CheckInAttemptSummary(SQLModel, table=True):
    """What pruned attempt-log rows said, per event, local day (of their first attempt), channel, action
    and outcome: `attempts` counts every repeat, `rows` the log lines folded in."""

    __tablename__ = "check_in_attempt_summary"
    __table_args__ = (
        UniqueConstraint("event_key", "day", "channel", "action", "outcome", name="uq_attempt_summary"),
    )

    id: int | None = Field(default=None, primary_key=True)
    event_id: int | None = None
    event_key: int = 0  # event_id or 0: NULLs are never equal in a unique constraint
    day: date
    channel: Channel = Field(sa_column=_enum(Channel))
    action: str = Field(max_length=16)
    outcome: str = Field(max_length=32)
    attempts: int = 0
    rows: int = 0


class KioskDevice(SQLModel, table=True):
    """An organizer's phone enrolled to scan personal cards at one venue. It acts as the staff member who
    enrolled it, limited to that venue's check-ins by card and headcounts. It holds a device token (kept
    as its sha256), got by typing a short-lived pairing code; revoking it stops the phone at once."""

    __tablename__ = "kiosk_device"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=60)
    venue_id: int = Field(foreign_key="venue.id", index=True)
    enrolled_by_id: int = Field(foreign_key="staff.id")
    created_at: datetime = Field(default_factory=utcnow)
    # sha256 of the current pairing code (8 digits, single use) and when it stops working.
    pairing_hash: str | None = Field(default=None, max_length=64, index=True)
    pairing_expires_at: datetime | None = None
    token_hash: str | None = Field(default=None, max_length=64, unique=True)
    paired_at: datetime | None = None
    last_seen_at: datetime | None = None
    revoked_at: datetime | None = None
    revoked_by_id: int | None = Field(default=None, foreign_key="staff.id")


class IndicatorTarget(SQLModel, table=True):
    """The office's target for one indicator and year (percent): a growth band low-high, or a share's
    minimum in `low`. A row with a unit applies to that unit and below; without one, everywhere. Where no
    row exists the plan's own target applies (services/indicators.py)."""

    __tablename__ = "indicator_target"
    __table_args__ = (UniqueConstraint("indicator", "year", "unit_key", name="uq_indicator_target"),)

    id: int | None = Field(default=None, primary_key=True)
    indicator: str = Field(max_length=32)
    year: int
    unit_id: int | None = Field(default=None, foreign_key="org_unit.id")
    unit_key: int = 0  # unit_id or 0: NULLs are never equal in a unique constraint
    low: float | None = None
    high: float | None = None
    updated_by_id: int | None = Field(default=None, foreign_key="staff.id")
    updated_at: datetime = Field(default_factory=utcnow)


class Meta(SQLModel, table=True):
    """Small facts about this database (for example that it holds demo data)."""

    __tablename__ = "meta"

    key: str = Field(primary_key=True, max_length=64)
    value: str = Field(default="", max_length=500)


class LibraryMetric(StrEnum):
    """A monthly figure a library enters by hand (docs/library-figures.md)."""

    titles_added = "titles_added"  # new titles (đầu sách, báo, tạp chí) added to the collection
    copies_added = "copies_added"  # new copies (bản) added
    materials_served = "materials_served"  # lượt sách, báo phục vụ
    desk_visits = "desk_visits"  # readers counted at the desk (lượt bạn đọc), beside check-ins


class ChangeSource(StrEnum):
    form = "form"
    import_file = "import"


class LibraryFigure(SQLModel, table=True):
    """One library's figure for one month. Every change is also a LibraryChange row."""

    __tablename__ = "library_figure"
    __table_args__ = (UniqueConstraint("venue_id", "year", "month", "metric", name="uq_library_figure"),)

    id: int | None = Field(default=None, primary_key=True)
    venue_id: int = Field(foreign_key="venue.id", index=True)
    year: int
    month: int  # 1-12
    metric: LibraryMetric = Field(sa_column=_enum(LibraryMetric))
    value: int
    updated_at: datetime = Field(default_factory=utcnow)
    updated_by_id: int | None = Field(default=None, foreign_key="staff.id")


class BookRotation(SQLModel, table=True):
    """A batch of books sent from one library to another (luân chuyển sách)."""

    __tablename__ = "book_rotation"

    id: int | None = Field(default=None, primary_key=True)
    from_venue_id: int = Field(foreign_key="venue.id", index=True)
    to_venue_id: int = Field(foreign_key="venue.id", index=True)
    copies: int
    sent_on: date = Field(index=True)
    note: str = Field(default="", max_length=300)
    recorded_by_id: int | None = Field(default=None, foreign_key="staff.id")
    recorded_at: datetime = Field(default_factory=utcnow)


class SchoolLibraryYear(SQLModel, table=True):
    """Whether a school library offered lifelong-learning services in a calendar year."""

    __tablename__ = "school_library_year"
    __table_args__ = (UniqueConstraint("venue_id", "year", name="uq_school_library_year"),)

    id: int | None = Field(default=None, primary_key=True)
    venue_id: int = Field(foreign_key="venue.id", index=True)
    year: int
    offers_lifelong_learning: bool = False
    updated_at: datetime = Field(default_factory=utcnow)
    updated_by_id: int | None = Field(default=None, foreign_key="staff.id")


class LibraryStandard(SQLModel, table=True):
    """Since when a school's library meets the standard of Circular 16/2022/TT-BGDĐT (no row: it does not)."""

    __tablename__ = "library_standard"

    venue_id: int = Field(foreign_key="venue.id", primary_key=True)
    met_since: date
    updated_at: datetime = Field(default_factory=utcnow)
    updated_by_id: int | None = Field(default=None, foreign_key="staff.id")


class LibraryChange(SQLModel, table=True):
    """The edit history of a venue's library figures: one row per changed value, never edited."""

    __tablename__ = "library_change"
    __table_args__ = (Index("ix_library_change_venue_at", "venue_id", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    venue_id: int = Field(foreign_key="venue.id")
    # figure: "2026-03"; rotation: its id; school_year: "2026"; standard: "".
    entity: str = Field(max_length=16)  # figure, rotation, school_year, standard
    key: str = Field(default="", max_length=32)
    field: str = Field(max_length=32)  # the metric, or copies / offers_lifelong_learning / met_since
    old_value: str | None = Field(default=None, max_length=300)  # None: there was none
    new_value: str | None = Field(default=None, max_length=300)  # None: removed
    staff_id: int | None = Field(default=None, foreign_key="staff.id")
    at: datetime = Field(default_factory=utcnow)
    source: ChangeSource = Field(sa_column=_enum(ChangeSource))


class AuditEntry(SQLModel, table=True):
    """One staff action on personal data, figures, targets, places, accounts or tokens
    (services/audit.py). Only ever inserted: no route or service changes or removes a row."""

    __tablename__ = "audit_entry"
    __table_args__ = (Index("ix_audit_entry_staff_at", "staff_id", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow, index=True)
    # No foreign key: the log outlives whatever it names. None: the command line (or a resident's phone).
    staff_id: int | None = None
    staff_username: str = Field(default="", max_length=64)
    action: str = Field(max_length=40, index=True)
    target_kind: str = Field(default="", max_length=32)
    target_id: str = Field(default="", max_length=64)
    detail: str = Field(default="{}", max_length=2000)  # a short JSON object
    address: str = Field(default="", max_length=64)
