"""Demo data: the six communes of the former Văn Quan district with made-up villages, venues of every type,
two years of events, a year of weekly club sessions and a few thousand check-ins, all made through the same
services as real data.

The data set is the same for the same seed and `now`; only the staff passwords are random (`secrets`).
"""

from __future__ import annotations

import itertools
import random
import secrets
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlmodel import Session, SQLModel, col, func, select

from server.config import Settings
from server.models import (
    AgeBand,
    Campaign,
    Channel,
    CheckIn,
    CheckInMode,
    Club,
    ClubType,
    Event,
    EventType,
    Gender,
    Headcount,
    LibraryMetric,
    Meta,
    OrgUnit,
    Role,
    Staff,
    UnitKind,
    Venue,
    VenueType,
    utcnow,
)
from server.services import clubs, flood, identities, kiosks, library, places, places_history, report_groups
from server.services.checkin import CheckInRequest, Identity, check_in
from server.services.clubs import ClubInput, ScheduleInput
from server.services.events import EventInput, cancel_event, create_event, update_event
from server.services.headcounts import HeadcountRequest, change_headcount
from server.services.identities import Profile
from server.services.scans import code_for
from server.services.staff import create_staff

# fmt: off
COMMUNES = {"Xã Văn Quan": "vanquan", "Xã Điềm He": "diemhe", "Xã Yên Phúc": "yenphuc",
            "Xã Tri Lễ": "trile", "Xã Tân Đoàn": "tandoan", "Xã Khánh Khê": "khanhkhe"}
ORGANIZER_PREFIX = {"vanquan": "thuvien", "trile": "nvh", "yenphuc": "nvh"}  # the others: "vhtt"
VILLAGES = (  # made up, in the style of Tày, Nùng and Kinh place names
    "Thôn Bản Cưởm", "Thôn Nà Làng", "Bản Pò Mỏ", "Thôn Khuổi Phầy", "Thôn Phai Lầu", "Bản Bó Khoang",
    "Thôn Còn Mằn", "Thôn Nà Pán", "Bản Kéo Sliến", "Thôn Lũng Cải", "Thôn Pác Lùng", "Bản Khau Mò",
    "Thôn Thâm Mỏ", "Thôn Nặm Tốc", "Thôn Tân Tiến", "Thôn Đồng Tâm", "Thôn Hòa Bình", "Thôn Bình Minh",
    "Bản Nà Thang", "Thôn Pò Khoang", "Thôn Khuổi Cáp", "Thôn Bản Piềng", "Thôn Nà Mạ", "Bản Phja Đeng",
    "Thôn Còn Nưa", "Thôn Pác Giả", "Thôn Lũng Vài", "Bản Kéo Pựt", "Thôn Nà Pùa", "Thôn Bó Luông",
    "Thôn Khau Cà", "Thôn Thâm Pò", "Bản Nặm Khưa", "Thôn Tiến Bộ", "Thôn Đoàn Kết", "Thôn Phố Mới",
    "Thôn Bản Chặp", "Thôn Nà Lừa", "Bản Pò Đán", "Thôn Khuổi Ngấn", "Thôn Còn Quân", "Bản Khau Lừa",
)
COMMUNE_VENUES = (  # every commune has these ({} is the commune's name)
    (VenueType.commune_library, "Thư viện xã {}"),
    (VenueType.culture_sport_centre, "Trung tâm Văn hóa - Thể thao xã {}"),
    (VenueType.community_learning_centre, "Trung tâm học tập cộng đồng xã {}"),
    (VenueType.legal_bookcase, "Tủ sách pháp luật UBND xã {}"),
    (VenueType.school_library, "Thư viện Trường Tiểu học {}"),
    (VenueType.school_library, "Thư viện Trường THCS {}"),
)
POST_OFFICES = ("vanquan", "trile", "yenphuc")  # communes with a post office-culture point
FAMILY = ("Hoàng", "Nông", "Lương", "Vi", "Lộc", "Hà", "Triệu", "Nguyễn", "Lăng", "Chu", "Hứa", "Lành")
GIVEN = {Gender.female: ("Mai", "Hoa", "Lan", "Thắm", "Nhung", "Quế", "Hương", "Duyên", "Thu"),
         Gender.male: ("Tuấn", "Hùng", "Cường", "Dũng", "Khánh", "Thắng", "Sơn", "Bình", "Quân")}
PASSWORD_LETTERS = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i

PUPILS = (AgeBand.from_6, AgeBand.from_12)
ADULTS = (AgeBand.from_16, AgeBand.from_25, AgeBand.from_60)
ALL = tuple(AgeBand)
# Age mix (AgeBand order: 0-5, 6-11, 12-15, 16-24, 25-59, 60+) of residents with a phone, and of people
# entered by hand because they have none (small children, many elderly).
PHONE_AGES = dict(zip(AgeBand, (0, 16, 26, 12, 32, 14), strict=True))
WALK_IN_AGES = dict(zip(AgeBand, (25, 30, 8, 3, 9, 25), strict=True))
# Attendance by month: Tết (February) and the school summer are quiet, April and October busy.
MONTH_FACTOR = {1: 0.9, 2: 0.45, 4: 1.3, 6: 0.75, 7: 0.6, 8: 0.7, 10: 1.3}
SCHOOL_MONTHS = (1, 3, 4, 5, 9, 10, 11, 12)
ELDERS = (AgeBand.from_60, AgeBand.from_25)
# Clubs: name, kind, leader, members' ages, meets at the commune culture-sport centre?, weekday (Monday 0),
# local hour, and the months it really meets in (None: every month; the others' sessions have nobody).
CLUBS = (
    ("CLB Hát then - đàn tính", ClubType.club, "Hoàng Văn Sơn", ADULTS, True, 2, 19.5, None),
    ("CLB Đọc sách thiếu nhi", ClubType.club, "Nông Thị Mai", PUPILS, False, 6, 15.0, None),
    ("CLB Hát sli, lượn", ClubType.interest_group, "Lương Văn Bình", ADULTS, False, 4, 19.5, (4, 10, 11)),
    ("CLB Dưỡng sinh người cao tuổi", ClubType.interest_group, "Vi Thị Hoa", ELDERS, False, 1, 6.5, None),
    ("Lớp năng khiếu múa dân tộc", ClubType.talent_class, "Hà Thị Thu", ALL, False, 5, 19.5,
     (1, 3, 4, 5, 9, 10, 11, 12)),
)
CLUB_YEAR = timedelta(days=365)  # clubs have met weekly for the past year
C, T, V = Campaign, EventType, VenueType
# Every year: (month, day, local hour, hours, campaign, event type), title, venue type, venues, ages, expected
CALENDAR = (
    ((1, 15, 8, 3, C.none, T.book_donation), "Tặng sách cho học sinh vùng khó dịp Tết",
     V.school_library, 2, PUPILS, 50),
    # Every commune library, so each commune has visits early in the year to grow from (see _check_indicators
    # in tests/test_demo.py: the demo makes every indicator non-trivial, even in February).
    ((1, 25, 8, 8, C.none, T.exhibition), "Hội báo Xuân {year}", V.commune_library, 6, ALL, 40),
    ((4, 19, 14, 3, C.reading_day, T.contest), "Chung kết cuộc thi Đại sứ văn hóa đọc năm {year}",
     V.school_library, 2, PUPILS, 60),
    ((4, 21, 8, 3, C.reading_day, T.reading_festival), "Ngày hội đọc sách năm {year}",
     V.commune_library, 3, ALL, 80),
    ((4, 21, 8, 4, C.reading_day, T.reading_festival), "Ngày Sách và Văn hóa đọc Việt Nam {year}",
     V.provincial_library, 1, ALL, 150),
    ((4, 23, 8, 8, C.world_book_day, T.exhibition), "Trưng bày sách nhân Ngày Sách và Bản quyền thế giới",
     V.commune_library, 2, ALL, 40),
    ((4, 23, 14, 3, C.world_book_day, T.book_donation), "Quyên góp sách tặng tủ sách thôn bản",
     V.post_culture_point, 2, ADULTS, 30),
    ((5, 18, 8, 4, C.museum_day, T.exhibition), "Trưng bày hiện vật văn hóa Tày, Nùng",
     V.culture_sport_centre, 2, ALL, 60),
    ((8, 20, 8, 4, C.none, T.book_donation), "Quyên góp sách, vở cho học sinh trước năm học mới",
     V.culture_sport_centre, 2, ALL, 40),
    ((10, 1, 8, 3, C.lifelong_learning_week, T.talk), "Khai mạc Tuần lễ hưởng ứng học tập suốt đời {year}",
     V.culture_sport_centre, 2, ALL, 90),
    ((10, 3, 14, 3, C.lifelong_learning_week, T.talk), "Tập huấn kỹ thuật trồng và chăm sóc cây hồi",
     V.community_learning_centre, 2, ADULTS, 40),
    ((10, 4, 8, 3, C.lifelong_learning_week, T.talk), "Hướng dẫn người cao tuổi dùng điện thoại thông minh",
     V.community_learning_centre, 2, ADULTS, 30),
    ((10, 5, 8, 3, C.lifelong_learning_week, T.contest), "Cuộc thi Giới thiệu sách năm {year}",
     V.school_library, 2, PUPILS, 50),
    ((10, 6, 8, 3, C.lifelong_learning_week, T.reading_festival), "Ngày hội đọc sách vì học tập suốt đời",
     V.commune_library, 2, ALL, 70),
    ((11, 9, 8, 2, C.none, T.talk), "Ngày Pháp luật: giới thiệu tủ sách pháp luật xã",
     V.legal_bookcase, 3, ADULTS, 30),
    ((11, 23, 8, 3, C.heritage_day, T.talk), "Nói chuyện chuyên đề: Thực hành Then - di sản của nhân loại",
     V.culture_sport_centre, 1, ADULTS, 60),
    ((11, 23, 8, 8, C.heritage_day, T.exhibition), "Triển lãm ảnh di sản văn hóa Xứ Lạng",
     V.commune_library, 2, ALL, 50),
    ((12, 20, 8, 3, C.none, T.reading_festival), "Giao lưu đọc sách với cán bộ, chiến sĩ",
     V.armed_forces_library, 1, ADULTS, 40),
)
SCHOOL_READING = "Giờ đọc sách tại thư viện trường"
# Around today: (venue, title, type, days from today, local hour, hours, ages, expected). The exhibition is
# open at any hour of today, so the check-in page works as soon as the demo starts.
TODAY = (
    ("Thư viện xã Văn Quan", "Trưng bày sách mới: Văn Quan - quê hương cây hồi", T.exhibition,
     -3, 7.5, 7 * 24 + 13.5, ALL, 120),
    ("Trung tâm học tập cộng đồng xã Văn Quan", "Tập huấn kỹ năng tìm kiếm thông tin trên mạng", T.talk,
     5, 8, 3, ADULTS, 35),
    ("Thư viện xã Tri Lễ", "Ngày hội đọc sách thiếu nhi", T.reading_festival, 9, 8, 3, PUPILS, 80),
)
# fmt: on


@dataclass(frozen=True)
class _Person:
    token: str  # the device token kept on the phone
    profile: Profile
    commune_id: int


@dataclass
class _Plan:
    venue: Venue
    title: str
    type: EventType
    starts_at: datetime
    hours: float
    audience: tuple[AgeBand, ...]
    expected: int
    campaign: Campaign = Campaign.none
    roster: list[_Person] | None = None  # club members
    cancelled: bool = False
    event: Event | None = None  # a club's session, already made by its schedule
    quiet: bool = False  # nobody came (a club that does not meet every month)

    @property
    def ends_at(self) -> datetime:
        return self.starts_at + timedelta(hours=self.hours)


@dataclass
class _World:
    rng: random.Random
    tz: ZoneInfo
    now: datetime
    communes: dict[str, OrgUnit] = field(default_factory=dict)  # by short name
    villages: dict[int, list[OrgUnit]] = field(default_factory=dict)  # by commune id
    venues: list[Venue] = field(default_factory=list)
    commune_of: dict[int, int | None] = field(default_factory=dict)  # venue id -> commune id
    staff: dict[int | None, Staff] = field(default_factory=dict)  # commune id (None: admin) -> organizer
    people: list[_Person] = field(default_factory=list)
    # Regulars without a phone (the elderly, pupils) who hold a personal card: commune id -> (card, ages)
    cards: dict[int, list[tuple[str, AgeBand]]] = field(default_factory=dict)
    clubs: list[tuple[Club, Staff]] = field(default_factory=list)


def has_data(session: Session) -> bool:
    """Whether the database holds any place, account or event."""
    models = (OrgUnit, Staff, Event)
    return any(session.exec(select(m.id).limit(1)).first() is not None for m in models)


def wipe(session: Session) -> None:
    """Delete every row of every table, children before parents."""
    connection = session.connection()
    for table in reversed(SQLModel.metadata.sorted_tables):
        connection.execute(table.delete())
    session.commit()


def build(
    session: Session, settings: Settings, *, seed: int = 2026, now: datetime | None = None
) -> list[tuple[str, str, str]]:
    """Fill an empty database with the demo data set; returns the (username, password, role) logins made."""
    w = _World(random.Random(seed), settings.tz, now or utcnow())
    places.load_communes(session, now=w.now)
    _places(session, w)
    logins = _staff(session, w)
    _venues(session, w)
    for short, commune in w.communes.items():
        for _ in range(220 if short == "vanquan" else 130):
            token = f"demo{w.rng.getrandbits(120):030x}"
            w.people.append(_Person(token, _profile(w, commune.id or 0, PHONE_AGES), commune.id or 0))
    _cards(session, settings, w)
    for plan in _plans(session, settings, w):
        _hold(session, settings, w, plan)
    _club_rosters(session, w)
    _kiosks(session, w)
    _library(session, w)
    _place_changes(session, w)
    session.merge(Meta(key="demo", value="1"))
    session.commit()
    return logins


def _places(session: Session, w: _World) -> None:
    query = select(OrgUnit).where(OrgUnit.kind == UnitKind.commune, col(OrgUnit.valid_to).is_(None))
    by_name = {unit.name: unit for unit in session.exec(query)}
    names = list(VILLAGES)
    w.rng.shuffle(names)
    for name, short in COMMUNES.items():
        commune = w.communes[short] = by_name[name]
        chosen = [names.pop() for _ in range(w.rng.randint(4, 7))]
        w.villages[commune.id or 0] = [
            places.add_unit(session, kind=UnitKind.village, name=v, parent_id=commune.id) for v in chosen
        ]


def _staff(session: Session, w: _World) -> list[tuple[str, str, str]]:
    vanquan = w.communes["vanquan"]
    accounts: list[tuple[str, Role, OrgUnit | None, str]] = [
        ("admin", Role.admin, None, "Quản trị hệ thống"),
        ("vanquan", Role.office, vanquan, "Phòng Văn hóa - Xã hội xã Văn Quan"),
    ]
    for short, commune in w.communes.items():
        name = _name(w.rng, w.rng.choice((Gender.female, Gender.male)))
        accounts.append((f"{ORGANIZER_PREFIX.get(short, 'vhtt')}.{short}", Role.organizer, commune, name))
    logins = []
    for username, role, unit, full_name in accounts:
        # Real, usable accounts: the passwords are random (not from the seed) but easy to read and type.
        password = "-".join("".join(secrets.choice(PASSWORD_LETTERS) for _ in range(4)) for _ in range(3))
        unit_id = unit.id if unit else None
        account = create_staff(
            session, username=username, password=password, role=role, unit_id=unit_id, full_name=full_name
        )
        if role != Role.office:
            w.staff[unit_id] = account
        logins.append((username, password, role.value))
    return logins


def _venues(session: Session, w: _World) -> None:
    def add(unit: OrgUnit, kind: VenueType, name: str, commune_id: int | None) -> None:
        venue = places.add_venue(session, name=name, type=kind, unit_id=unit.id)
        w.venues.append(venue)
        w.commune_of[venue.id or 0] = commune_id

    province = session.get(OrgUnit, w.communes["vanquan"].parent_id)
    assert province is not None, "load_communes makes the province"
    add(province, VenueType.provincial_library, "Thư viện tỉnh Lạng Sơn", None)
    for short, commune in w.communes.items():
        name, cid = commune.name.removeprefix("Xã "), commune.id
        for kind, pattern in COMMUNE_VENUES:
            add(commune, kind, pattern.format(name), cid)
        if short in POST_OFFICES:
            add(commune, VenueType.post_culture_point, f"Điểm Bưu điện - Văn hóa xã {name}", cid)
        for i, village in enumerate(w.villages[cid or 0]):
            if i == 0 or w.rng.random() < 0.8:  # most villages have a cultural house
                label = village.name[0].lower() + village.name[1:]
                add(village, VenueType.village_cultural_house, f"Nhà văn hóa {label}", cid)
    vanquan = w.communes["vanquan"]
    add(vanquan, VenueType.school_library, "Thư viện Trường THPT Văn Quan", vanquan.id)
    add(vanquan, VenueType.armed_forces_library, "Tủ sách Ban Chỉ huy Quân sự xã Văn Quan", vanquan.id)


def _place_changes(session: Session, w: _World) -> None:
    """A village of Khánh Khê moved to a neighbouring commune on 1 September last year, and the former Văn
    Quan district saved as a reporting group.

    The demo's records were all made before the move is recorded here, so those from its effective day on
    still carry Khánh Khê. A real office would have recorded the move on time and those records would carry
    the new commune: the demo stamps them so (demo data only; the change services never rewrite a record).
    Records from before the move keep Khánh Khê, as every real record does."""
    admin = w.staff[None]
    local_now = w.now.astimezone(w.tz)
    on = max(date(local_now.year - 1, 9, 1), places.REFORM_DATE + timedelta(days=1))
    source = w.communes["khanhkhe"]
    village = w.villages[source.id or 0][0]  # the first village of a commune always has a cultural house
    others = [c for c in w.communes.values() if c.id != source.id]
    target = min(others, key=lambda c: (len(w.villages[c.id or 0]), c.name))  # keeps each commune at <= 7
    venue_ids = [v.id for v in session.exec(select(Venue).where(Venue.unit_id == village.id))]
    moved = places_history.move_village(
        session, admin, village.id or 0, commune_id=target.id, on=on, now=w.now
    )
    since = datetime.combine(on, time(0), w.tz).astimezone(UTC)
    stamp = {"commune_id": target.id, "village_id": moved.id}
    for model, at in ((CheckIn, CheckIn.checked_in_at), (Headcount, Headcount.counted_at)):
        rows = session.exec(select(model).where(col(model.venue_id).in_(venue_ids), col(at) >= since))
        for row in rows:
            row.sqlmodel_update(stamp)
            session.add(row)
    session.commit()
    report_groups.save_group(
        session,
        admin,
        name="Huyện Văn Quan cũ",
        description="Sáu xã của huyện Văn Quan trước ngày 1/7/2025",
        unit_ids=[c.id or 0 for c in w.communes.values()],
    )


def _cards(session: Session, settings: Settings, w: _World) -> None:
    """Each commune's culture-sport centre issued personal cards to regulars who have no phone."""
    issued_at = w.now - timedelta(days=740)
    for commune in w.communes.values():
        cid = commune.id or 0
        centre = next(
            v for v in _of_type(w, VenueType.culture_sport_centre) if w.commune_of[v.id or 0] == cid
        )
        profiles = [_profile(w, cid, WALK_IN_AGES) for _ in range(24)]
        cards = identities.issue_cards(session, settings, w.staff[cid], centre, profiles, now=issued_at)
        w.cards[cid] = [(card.lookup, p.age_band) for card, p in zip(cards, profiles, strict=True)]


def _kiosks(session: Session, w: _World) -> None:
    """The main library's door phone, paired and in use, and an old phone that was lost and revoked (so
    /kiosks shows both). Their tokens are thrown away: pair a real phone with a new code to try one."""
    library = next(venue for venue in w.venues if venue.name == TODAY[0][0])
    organizer = w.staff[w.commune_of[library.id or 0]]
    for name, enrolled_days, revoked_days in (
        ("Điện thoại cửa thư viện", 20, None),
        ("Điện thoại cũ (bị mất)", 90, 30),
    ):
        enrolled = w.now - timedelta(days=enrolled_days)
        device, code = kiosks.enrol_device(session, organizer, library.id, name, enrolled)
        kiosks.pair_device(session, code, enrolled + timedelta(minutes=2))
        if revoked_days is not None:
            kiosks.revoke_device(session, organizer, device.id or 0, w.now - timedelta(days=revoked_days))


# A public library's usual month (titles added, copies added, materials served, readers at the desk): the
# province's library is about five times a commune's.
LIBRARY_MONTH = {LibraryMetric.titles_added: 30, LibraryMetric.copies_added: 90,
                 LibraryMetric.materials_served: 1500, LibraryMetric.desk_visits: 600}  # fmt: skip
LIBRARY_GROWTH = 1.09  # this year against last: inside the plan's 8-10 % band, on average


def _library(session: Session, w: _World) -> None:
    """Two years of monthly figures for the public libraries (a typing mistake corrected a few days later),
    rotations from the province's library and between communes, and the school libraries' yearly flag and
    standard dates, all through services/library.py so the edit history is the one staff would leave."""
    today = w.now.astimezone(w.tz).date()
    last_year, this_year = today.year - 1, today.year
    admin = w.staff[None]
    libraries = _of_type(w, VenueType.provincial_library) + _of_type(w, VenueType.commune_library)
    first: tuple[Venue, Staff] | None = None
    for venue in libraries:
        commune_id = w.commune_of[venue.id or 0]
        staff = w.staff[commune_id] if commune_id is not None else admin
        size = 5.0 if venue.type == VenueType.provincial_library else w.rng.uniform(0.6, 1.4)
        for year, growth in ((last_year, 1.0), (this_year, LIBRARY_GROWTH)):
            months = range(1, 13) if year < this_year else range(1, today.month)  # this month is not over
            for month in months:
                factor = size * growth * MONTH_FACTOR.get(month, 1.0)
                cells: dict[library.FigureKey, int | None] = {
                    (month, metric): round(base * factor * w.rng.uniform(0.85, 1.15))
                    for metric, base in LIBRARY_MONTH.items()
                }
                # Entered early the next month.
                entered = min(_at(w, date(year + month // 12, month % 12 + 1, 3), 9), w.now)
                library.save_figures(session, staff, venue, year, cells, today=today, now=entered)
        if first is None:
            first = (venue, staff)
    if first is not None:  # a figure typed with a digit too many, corrected the next week
        venue, staff = first
        key = (3, LibraryMetric.materials_served)
        right = library.year_figures(session, venue.id or 0, last_year)[key].value
        typed = _at(w, date(last_year, 4, 3), 10)
        library.save_figures(session, staff, venue, last_year, {key: right * 10}, today=today, now=typed)
        fixed = typed + timedelta(days=7)
        library.save_figures(session, staff, venue, last_year, {key: right}, today=today, now=fixed)
    province, communes = libraries[0], libraries[1:]
    for year in (last_year, this_year):
        for i, target in enumerate(communes):
            sent_on = date(year, 3 + (i % 3) * 3, 10 + i)
            if sent_on >= today:
                continue
            copies = round(w.rng.randint(80, 160) * (LIBRARY_GROWTH if year == this_year else 1))
            data = library.RotationInput(target.id or 0, copies, sent_on, "Luân chuyển sách định kỳ")
            library.add_rotation(session, admin, province, data, today=today, now=_at(w, sent_on, 15))
    for year in (last_year, this_year):  # books and papers for Tết, each commune library to the next
        for i, sender in enumerate(communes):
            sent_on = date(year, 1, 6 + i)
            if sent_on >= today:
                continue
            receiver = communes[(i + 1) % len(communes)]
            data = library.RotationInput(receiver.id or 0, w.rng.randint(20, 40), sent_on, "Sách báo Xuân")
            staff = w.staff[w.commune_of[sender.id or 0]]
            library.add_rotation(session, staff, sender, data, today=today, now=_at(w, sent_on, 15))
    for sender, receiver in itertools.pairwise(communes):
        sent_on = date(last_year, 10, 20)
        data = library.RotationInput(receiver.id or 0, w.rng.randint(30, 60), sent_on, "Sách thiếu nhi")
        staff = w.staff[w.commune_of[sender.id or 0]]
        library.add_rotation(session, staff, sender, data, today=today, now=_at(w, sent_on, 15))
    for i, school in enumerate(_of_type(w, VenueType.school_library)):
        staff = w.staff[w.commune_of[school.id or 0]]
        since = date(last_year - 1, 9, 5) if i % 3 == 0 else None  # a third meet the standard
        for year, offers in ((last_year, i % 2 == 0), (this_year, i % 4 != 3)):
            if year == this_year and i % 5 == 4:
                continue  # not entered yet
            at = min(_at(w, date(year, 12, 20), 9), w.now)
            library.save_school_year(session, staff, school, year, offers, since, today=today, now=at)


def _name(rng: random.Random, gender: Gender) -> str:
    middle = "Thị" if gender == Gender.female else "Văn"
    return f"{rng.choice(FAMILY)} {middle} {rng.choice(GIVEN[gender])}"


def _profile(w: _World, commune_id: int, ages: dict[AgeBand, int]) -> Profile:
    age = w.rng.choices(list(ages), weights=list(ages.values()))[0]
    gender = w.rng.choices((Gender.female, Gender.male, Gender.unspecified), weights=(52, 46, 2))[0]
    # Some adults give their name (club rosters, prizes); children never do.
    named = not age.is_child and gender != Gender.unspecified and w.rng.random() < 0.15
    name = _name(w.rng, gender) if named else None
    home = w.rng.choice(w.villages[commune_id]).id
    return Profile(age_band=age, gender=gender, home_unit_id=home, name=name, consent=True)


def _at(w: _World, day: date, hour: float) -> datetime:
    """A local wall-clock time as aware UTC."""
    return (datetime.combine(day, time(), w.tz) + timedelta(hours=hour)).astimezone(UTC)


def _of_type(w: _World, kind: VenueType) -> list[Venue]:
    return [venue for venue in w.venues if venue.type == kind]


def _plans(session: Session, settings: Settings, w: _World) -> list[_Plan]:
    first = (w.now - timedelta(days=730)).astimezone(w.tz).date()
    last = (w.now + timedelta(days=21)).astimezone(w.tz).date()
    plans = _club_plans(session, settings, w) + _calendar_plans(w, first.year, last.year) + _today_plans(w)
    plans = [p for p in plans if first <= p.starts_at.astimezone(w.tz).date() <= last]
    # A commune without a club began using the app this year: last year nobody checked in there, so its
    # indicators have "no base" to grow from.
    with_clubs = {w.commune_of[club.venue_id] for club, _ in w.clubs}
    # Not Văn Quan: its office's demo login should see growth over last year.
    newcomer = next((c.id for k, c in w.communes.items() if k != "vanquan" and c.id not in with_clubs), None)
    this_year = date(w.now.astimezone(w.tz).year, 1, 1)
    for p in plans:
        if w.commune_of[p.venue.id or 0] == newcomer and p.starts_at.astimezone(w.tz).date() < this_year:
            p.quiet = True
    for plan in w.rng.sample([p for p in plans if p.roster and not p.quiet and p.ends_at < w.now], 2):
        plan.cancelled = True  # called off (a storm, a funeral in the village): no check-ins
    return sorted(plans, key=lambda p: p.starts_at)


def _club_plans(session: Session, settings: Settings, w: _World) -> list[_Plan]:
    """Clubs made and scheduled a year ago by their commune's organizer; the schedule made their weekly
    sessions (services/clubs.py) for the past year and the next 8 weeks."""
    plans = []
    houses = _of_type(w, VenueType.village_cultural_house)
    centres = _of_type(w, VenueType.culture_sport_centre)
    since = w.now - CLUB_YEAR
    for name, kind, leader, ages, at_centre, weekday, hour, months in CLUBS:
        options = centres if at_centre else houses
        venue = options.pop(w.rng.randrange(len(options)))
        commune_id = w.commune_of[venue.id or 0]
        organizer = w.staff[commune_id]
        members = [p for p in w.people if p.commune_id == commune_id and p.profile.age_band in ages]
        roster = w.rng.sample(members, min(len(members), w.rng.randint(8, 14)))
        club = clubs.create_club(session, organizer, ClubInput(name, kind, venue.id or 0, leader), now=since)
        start = time(int(hour), round(hour % 1 * 60))
        schedule = ScheduleInput((weekday,), start, 90, since.astimezone(w.tz).date())
        clubs.set_schedule(session, organizer, club, schedule, now=since)
        w.clubs.append((club, organizer))
        made = clubs.generate_sessions(
            session, club, since=since, now=w.now, settings=settings, staff=organizer
        )
        for event in made:
            month = event.starts_at.astimezone(w.tz).month
            # Half the sessions around Tết have nobody; some clubs only meet in a few months of the year.
            quiet = (months is not None and month not in months) or (month == 2 and w.rng.random() < 0.5)
            plan = _Plan(
                venue, club.name, T.club_session, event.starts_at, 1.5, ages, len(roster), roster=roster
            )
            plan.event, plan.quiet = event, quiet
            plans.append(plan)
    return plans


def _club_rosters(session: Session, w: _World) -> None:
    """Who came to a club at least twice is on its roster; the next session of the first club moved a day."""
    for club, organizer in w.clubs:
        counts = session.exec(
            select(CheckIn.participant_id, func.count())
            .join(Event, col(Event.id) == CheckIn.event_id)
            .where(Event.club_id == club.id)
            .group_by(col(CheckIn.participant_id))
        ).all()
        for participant_id, visits in sorted(counts):
            if visits >= 2:
                clubs.add_member(session, organizer, club, participant_id, now=club.created_at)
    club, organizer = w.clubs[0]
    upcoming = clubs.next_session(session, club, w.now + timedelta(days=7))
    if upcoming is not None:  # the cultural house is busy that evening: one session moves to the next day
        moved = upcoming.starts_at + timedelta(days=1)
        data = EventInput(
            upcoming.title, upcoming.type, upcoming.venue_id, moved, moved + timedelta(minutes=90)
        )
        update_event(session, organizer, upcoming, data, now=w.now)


def _calendar_plans(w: _World, first_year: int, last_year: int) -> list[_Plan]:
    plans = []
    for year in range(first_year, last_year + 1):
        for (month, day, hour, hours, campaign, kind), title, venue_type, count, ages, expected in CALENDAR:
            start, text = _at(w, date(year, month, day), hour), title.format(year=year)
            for venue in w.rng.sample(_of_type(w, venue_type), count):
                plans.append(_Plan(venue, text, kind, start, hours, ages, expected, campaign))
        for month in SCHOOL_MONTHS:  # a class visits a commune library; a reading hour in a school library
            visit = date(year, month, w.rng.randint(8, 26))
            visit -= timedelta(days=max(0, visit.weekday() - 3))  # Monday to Thursday
            library = w.rng.choice(_of_type(w, VenueType.commune_library))
            school = w.rng.choice(_of_type(w, VenueType.school_library))
            title = f"Học sinh Trường Tiểu học {library.name.removeprefix('Thư viện xã ')} tham quan thư viện"
            reading = _at(w, visit + timedelta(days=1), 14)
            plans.append(_Plan(library, title, T.library_visit, _at(w, visit, 8.5), 2, PUPILS, 25))
            plans.append(_Plan(school, SCHOOL_READING, T.library_visit, reading, 1.5, PUPILS, 20))
    return plans


def _today_plans(w: _World) -> list[_Plan]:
    """An exhibition open now and two events coming soon (see TODAY)."""
    today = w.now.astimezone(w.tz).date()
    named = {venue.name: venue for venue in w.venues}
    plans = []
    for venue, title, kind, days, hour, hours, ages, expected in TODAY:
        start = _at(w, today + timedelta(days=days), hour)
        plans.append(_Plan(named[venue], title, kind, start, hours, ages, expected))
    return plans


def _hold(session: Session, settings: Settings, w: _World, plan: _Plan) -> None:
    """Create the event as its organizer would, then check its participants in through `check_in`."""
    commune_id = w.commune_of[plan.venue.id or 0]
    organizer = w.staff.get(commune_id, w.staff[None])
    data = EventInput(
        plan.title, plan.type, plan.venue.id or 0, plan.starts_at, plan.ends_at, plan.campaign, plan.expected
    )
    if plan.event is not None:
        event = plan.event
    else:
        event = create_event(session, organizer, data, now=min(plan.starts_at - timedelta(days=7), w.now))
    if plan.title == TODAY[0][1]:
        event.checkin_mode = CheckInMode.both  # the screen at the entrance shows a rotating code too
        session.add(event)
        session.commit()
    if plan.cancelled:
        cancel_event(session, event, now=min(plan.starts_at - timedelta(hours=6), w.now))
    if plan.cancelled or plan.quiet or plan.starts_at >= w.now:
        return
    if plan.title == TODAY[0][1]:
        _flood(session, settings, w, event)
    turnout = w.rng.uniform(0.3, 0.65) if plan.roster else w.rng.uniform(0.35, 0.7)
    elapsed = min(1.0, (w.now - plan.starts_at) / (plan.ends_at - plan.starts_at))
    month = MONTH_FACTOR.get(plan.starts_at.astimezone(w.tz).month, 1.0)
    size = max(1, round((len(plan.roster) if plan.roster else plan.expected) * turnout * month * elapsed))
    walk_ins = sum(w.rng.random() < (0.04 if plan.roster else 0.14) for _ in range(size))
    local = [
        p for p in w.people if commune_id in (None, p.commune_id) and p.profile.age_band in plan.audience
    ]
    pool = plan.roster or local
    people: list[_Person | None] = [*w.rng.sample(pool, min(size - walk_ins, len(pool))), *[None] * walk_ins]
    w.rng.shuffle(people)
    times = sorted(_arrival(w, plan) for _ in people)
    walk_in_ages = {age: n for age, n in WALK_IN_AGES.items() if age in plan.audience}
    cards = [c for c in w.cards.get(commune_id or 0, []) if c[1] in plan.audience]
    w.rng.shuffle(cards)
    code = code_for(event, settings)
    for i, (person, at) in enumerate(zip(people, times, strict=True)):
        key = f"demo-{event.id}-{i:03d}"
        if person is not None:  # a resident's phone scanned the poster
            request = CheckInRequest(
                Channel.page, key, Identity(device_token=person.token, profile=person.profile), code=code
            )
            # Each phone its own connection (the flood budget is by address: services/flood.py).
            check_in(session, settings, request, now=at, address=f"demo-phone-{person.token}")
            continue
        # No phone. A regular shows their card; a child with a parent is counted at the door; someone
        # else is written on the paper register, which the organizer types in the next morning.
        chance = w.rng.random()
        if cards and chance < 0.5:
            identity = Identity(card=cards.pop()[0])
            request = CheckInRequest(Channel.staff_form, key, identity, event_id=event.id)
            check_in(session, settings, request, staff=organizer, now=at)
        elif chance < 0.8:
            age = w.rng.choices(list(walk_in_ages), weights=list(walk_in_ages.values()))[0]
            count = HeadcountRequest(key, event.id or 0, 1, age_band=age, gender=None, claimed_at=at)
            change_headcount(session, settings, count, staff=organizer, now=at)
        else:
            profile = _profile(w, commune_id or w.rng.choice(list(w.villages)), walk_in_ages)
            identity = Identity(profile=profile)
            request = CheckInRequest(Channel.staff_form, key, identity, event_id=event.id, claimed_at=at)
            typed_at = min(w.now, at + timedelta(hours=15))
            check_in(session, settings, request, staff=organizer, now=typed_at)


def _flood(session: Session, settings: Settings, w: _World, event: Event) -> None:
    """A script posting made-up people from one address within one minute, 20 minutes ago: more than the
    event's budget, so the organizer finds them under "Suspicious check-ins" (services/flood.py)."""
    at = (w.now - timedelta(minutes=20)).replace(second=0, microsecond=0)
    if not event.starts_at <= at:
        return
    code = code_for(event, settings)
    for i in range(flood.budget(settings, event) + 25):
        profile = Profile(age_band=AgeBand.from_25, gender=Gender.male, consent=True)
        request = CheckInRequest(
            Channel.public_api, f"demo-flood-{event.id}-{i:03d}", Identity(profile=profile), code=code
        )
        check_in(session, settings, request, now=at + timedelta(seconds=i % 60), address="203.0.113.50")


def _arrival(w: _World, plan: _Plan) -> datetime:
    """A check-in time: early in a short event; in opening hours on a day of a long one; never after now."""
    end = min(plan.ends_at, w.now)
    if plan.hours > 12:
        days = w.rng.randrange((end - plan.starts_at).days + 1)
        day = plan.starts_at.astimezone(w.tz).date() + timedelta(days=days)
        at = _at(w, day, 8 + 9 * w.rng.random())
        if plan.starts_at <= at <= end:
            return at
    return plan.starts_at + (end - plan.starts_at) * w.rng.random() ** 2
