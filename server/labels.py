"""Human names for the vocabularies in models.py (English msgids, translated where shown)."""

from __future__ import annotations

import unicodedata
from enum import StrEnum
from typing import Any

from server.errors import N_
from server.models import (
    AgeBand,
    Campaign,
    Channel,
    CheckInMode,
    ClubType,
    EventStatus,
    EventType,
    Gender,
    LibraryMetric,
    LinkKind,
    Role,
    UnitKind,
    VenueType,
)

VENUE_TYPES: dict[VenueType, str] = {
    VenueType.provincial_library: N_("Provincial public library"),
    VenueType.commune_library: N_("Commune public library"),
    VenueType.school_library: N_("School library"),
    VenueType.armed_forces_library: N_("Armed forces library or bookcase"),
    VenueType.culture_sport_centre: N_("Commune culture-sport centre"),
    VenueType.village_cultural_house: N_("Village cultural house"),
    VenueType.community_learning_centre: N_("Community learning centre"),
    VenueType.post_culture_point: N_("Post office-culture point"),
    VenueType.legal_bookcase: N_("Legal bookcase at the commune office"),
}

EVENT_TYPES: dict[EventType, str] = {
    EventType.reading_festival: N_("Reading festival"),
    EventType.contest: N_("Contest"),
    EventType.club_session: N_("Club session"),
    EventType.exhibition: N_("Exhibition"),
    EventType.talk: N_("Talk or training"),
    EventType.book_donation: N_("Book donation"),
    EventType.library_visit: N_("Library visit"),
    EventType.other: N_("Other"),
}

CAMPAIGNS: dict[Campaign, str] = {
    Campaign.reading_day: N_("Book and Reading Culture Day (21/4)"),
    Campaign.world_book_day: N_("World Book and Copyright Day (23/4)"),
    Campaign.museum_day: N_("International Museum Day (18/5)"),
    Campaign.heritage_day: N_("Cultural Heritage Day (23/11)"),
    Campaign.lifelong_learning_week: N_("Lifelong Learning Week"),
    Campaign.none: N_("No campaign"),
}

AGE_BANDS: dict[AgeBand, str] = {
    AgeBand.under_6: N_("Under 6"),
    AgeBand.from_6: N_("6 to 11"),
    AgeBand.from_12: N_("12 to 15"),
    AgeBand.from_16: N_("16 to 24"),
    AgeBand.from_25: N_("25 to 59"),
    AgeBand.from_60: N_("60 and over"),
}

GENDERS: dict[Gender, str] = {
    Gender.female: N_("Female"),
    Gender.male: N_("Male"),
    Gender.unspecified: N_("Other or prefer not to say"),
}

ROLES: dict[Role, str] = {
    Role.admin: N_("Administrator"),
    Role.office: N_("Culture office"),
    Role.organizer: N_("Organizer"),
}

UNIT_KINDS: dict[UnitKind, str] = {
    UnitKind.province: N_("Province"),
    UnitKind.commune: N_("Commune"),
    UnitKind.village: N_("Village"),
}

EVENT_STATUSES: dict[EventStatus, str] = {
    EventStatus.scheduled: N_("Scheduled"),
    EventStatus.cancelled: N_("Cancelled"),
}

CHECKIN_MODES: dict[CheckInMode, str] = {
    CheckInMode.poster: N_("Printed QR poster"),
    CheckInMode.rotating: N_("Code changing on a screen (a photo of it stops working)"),
    CheckInMode.both: N_("Printed poster and a changing code on a screen"),
}

CHANNELS: dict[Channel, str] = {
    Channel.page: N_("Phone (QR code)"),
    Channel.public_api: N_("Phone (app)"),
    Channel.staff_form: N_("Entered by staff"),
    Channel.staff_api: N_("Entered by staff (API)"),
    Channel.kiosk: N_("Card reader"),
    Channel.batch: N_("Sent later from a device"),
}

CLUB_TYPES: dict[ClubType, str] = {
    ClubType.club: N_("Club"),
    ClubType.talent_class: N_("Talent class"),
    ClubType.interest_group: N_("Interest group"),
}

LIBRARY_METRICS: dict[LibraryMetric, str] = {
    LibraryMetric.titles_added: N_("New titles added"),
    LibraryMetric.copies_added: N_("New copies added"),
    LibraryMetric.materials_served: N_("Books and newspapers served"),
    LibraryMetric.desk_visits: N_("Readers counted at the desk"),
}

# Monday is 0, as in date.weekday().
WEEKDAYS = (
    N_("Monday"),
    N_("Tuesday"),
    N_("Wednesday"),
    N_("Thursday"),
    N_("Friday"),
    N_("Saturday"),
    N_("Sunday"),
)

LINK_KINDS: dict[LinkKind, str] = {
    LinkKind.renamed: N_("renamed"),
    LinkKind.moved: N_("moved"),
    LinkKind.merged: N_("merged"),
    LinkKind.split_up: N_("split"),
}

ALL: dict[type[StrEnum], dict[Any, str]] = {
    LinkKind: LINK_KINDS,
    ClubType: CLUB_TYPES,
    LibraryMetric: LIBRARY_METRICS,
    CheckInMode: CHECKIN_MODES,
    Channel: CHANNELS,
    VenueType: VENUE_TYPES,
    EventType: EVENT_TYPES,
    Campaign: CAMPAIGNS,
    AgeBand: AGE_BANDS,
    Gender: GENDERS,
    Role: ROLES,
    UnitKind: UNIT_KINDS,
    EventStatus: EVENT_STATUSES,
}


def label(value: StrEnum) -> str:
    """The msgid naming an enum value (translate it with `_()` where it is shown)."""
    return ALL[type(value)][value]


def sort_key(name: str | None) -> tuple[str, str]:
    """Near-Vietnamese alphabetical order without ICU: "Đồng Đăng" sorts with D, "Ải" with A, not after Z."""
    plain = unicodedata.normalize("NFD", name or "").replace("đ", "d").replace("Đ", "D")
    return "".join(c for c in plain if not unicodedata.combining(c)).casefold(), name or ""
