"""JSON shapes of the API (/api/v1). Times are ISO 8601 with an offset; stored and returned in UTC."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, SkipValidation

from server.models import AgeBand, Campaign, Channel, CheckInMode, EventStatus, EventType, Gender


class EventIn(BaseModel):
    title: str = Field(min_length=1, max_length=200)
    type: EventType
    venue_id: int
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    campaign: Campaign = Campaign.none
    expected_audience: int | None = Field(default=None, ge=0, le=1_000_000)
    description: str = Field(default="", max_length=2000)
    checkin_mode: CheckInMode = Field(
        default=CheckInMode.poster, description="which codes open check-in: poster, rotating (screen) or both"
    )


class EventPatch(BaseModel):
    """Only the fields given are changed."""

    title: str | None = Field(default=None, min_length=1, max_length=200)
    type: EventType | None = None
    venue_id: int | None = None
    starts_at: AwareDatetime | None = None
    ends_at: AwareDatetime | None = None
    campaign: Campaign | None = None
    expected_audience: int | None = Field(default=None, ge=0, le=1_000_000)
    description: str | None = Field(default=None, max_length=2000)
    checkin_mode: CheckInMode | None = None


class EventOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    title: str
    type: EventType
    venue_id: int
    starts_at: datetime
    ends_at: datetime
    campaign: Campaign
    expected_audience: int | None
    description: str
    status: EventStatus
    checkin_mode: CheckInMode
    checkin_url: str = ""
    checkin_code: str = ""


class EventPage(BaseModel):
    items: list[EventOut]
    total: int
    page: int


class ProfileIn(BaseModel):
    """Required for a participant not seen before; `consent` must be true (an act, never a default)."""

    age_band: AgeBand
    gender: Gender
    home_unit_id: int | None = None
    name: str | None = Field(default=None, max_length=200)
    consent: bool = False


KEY = Field(min_length=8, max_length=64, description="idempotency key made on the device; a retry is a no-op")
CLAIMED = Field(
    default=None,
    description="when the scan was made (ISO 8601 with offset), for outboxes and paper registers; "
    "default: when the request arrives. Must lie in the event's check-in window.",
)


class StaffCheckInIn(BaseModel):
    """A check-in entered by staff: give exactly one of card, participant_id, device_token or profile."""

    nonce: str = KEY
    card: str | None = Field(default=None, max_length=40, description="a personal card's number or QR text")
    participant_id: int | None = Field(default=None, ge=1, description="a participant found by name")
    device_token: str | None = Field(default=None, max_length=64)
    profile: ProfileIn | None = Field(default=None, description="a new participant without phone or card")
    checked_in_at: AwareDatetime | None = CLAIMED


class PublicCheckInIn(BaseModel):
    """A resident's own check-in with the code from the poster (what the check-in page posts)."""

    code: str = Field(min_length=9, max_length=32)
    nonce: str = KEY
    device_token: str | None = Field(default=None, max_length=64)
    profile: ProfileIn | None = None
    rotation: str | None = Field(
        default=None, max_length=16, description="the `t` of a rotating screen code's link"
    )
    checked_in_at: AwareDatetime | None = CLAIMED


class HeadcountIn(BaseModel):
    """A change of the walk-in count (people counted at the door who do not check in)."""

    nonce: str = KEY
    delta: int = Field(ge=-500, le=500, description="+n or -n, not 0")
    age_band: AgeBand | None = None
    gender: Gender | None = None
    counted_at: AwareDatetime | None = CLAIMED


class HeadcountOut(BaseModel):
    id: int
    event_id: int
    delta: int
    age_band: AgeBand | None
    gender: Gender | None
    counted_at: datetime
    total: int = Field(description="the event's walk-in count after this change")
    created: bool = True


class BatchItemIn(BaseModel):
    """One check-in or headcount change made offline. A check-in names its event by `code` (a phone)
    or `event_id` (staff), and who came by device_token (+ profile the first time), card,
    participant_id or profile. A headcount change (staff only) gives event_id and delta."""

    type: Literal["check_in", "headcount"] = "check_in"
    key: str = KEY
    event_id: int | None = Field(default=None, ge=1)
    code: str | None = Field(default=None, min_length=9, max_length=32)
    claimed_at: AwareDatetime | None = CLAIMED
    device_token: str | None = Field(default=None, max_length=64)
    card: str | None = Field(default=None, max_length=40)
    participant_id: int | None = Field(default=None, ge=1)
    profile: ProfileIn | None = None
    delta: int | None = Field(default=None, ge=-500, le=500)
    age_band: AgeBand | None = None
    gender: Gender | None = None
    kiosk: bool = Field(default=False, description="sent by the organizer's kiosk (staff only)")


class BatchIn(BaseModel):
    """Up to 500 items, each answered on its own: one bad item never sinks the others."""

    items: Annotated[list[SkipValidation[BatchItemIn]], Field(min_length=1, max_length=500)]


class BatchResultOut(BaseModel):
    key: str
    status: Literal["stored", "replayed", "refused"]
    code: str | None = Field(default=None, description="the refusal's error code")
    message: str | None = None
    check_in_id: int | None = None
    headcount_id: int | None = None
    late: bool = False
    who: str | None = Field(default=None, description="the participant's name, if given (staff only)")
    participant_id: int | None = Field(default=None, description="who it was (staff only)")
    checked_in_at: datetime | None = Field(
        default=None, description="when they came: this check-in, or the earlier one (already_checked_in)"
    )
    device_token: str | None = Field(default=None, description="set when a new device token was made")


class BatchOut(BaseModel):
    results: list[BatchResultOut]


class KioskDeviceOut(BaseModel):
    id: int
    name: str
    venue_id: int
    venue_name: str


class KioskEventOut(BaseModel):
    id: int
    title: str
    starts_at: datetime
    ends_at: datetime
    opens_at: datetime = Field(description="check-in opens (the start less the check-in margin)")
    closes_at: datetime = Field(description="check-in closes (the end plus the check-in margin)")


class KioskOut(BaseModel):
    """What a kiosk shows: itself and its venue's events of today (their check-in window touches it)."""

    device: KioskDeviceOut
    events: list[KioskEventOut]
    server_time: datetime = Field(description="the server's clock, for the kiosk to see its own drift")


class CheckInOut(BaseModel):
    id: int
    event_id: int
    participant_id: int
    checked_in_at: datetime = Field(description="when the person came (the claimed scan time)")
    received_at: datetime
    late: bool
    channel: Channel
    age_band: AgeBand
    gender: Gender
    created: bool = True
    device_token: str | None = Field(default=None, description="set when a new device token was made")
    suspicious: bool = Field(default=False, description="over its address's budget of new people a minute")
    excluded: bool = Field(default=False, description="excluded from every count by staff (a flood)")


class ParticipantOut(BaseModel):
    id: int
    name: str | None = Field(description="only adults who chose to give it")
    age_band: AgeBand
    gender: Gender
    home_unit_id: int | None
    cards: list[str] = Field(description="numbers of the participant's cards that still work")


class NewParticipantIn(BaseModel):
    """Someone without a phone, registered by staff; with `card_venue_id`, they get a card issued there."""

    profile: ProfileIn
    card_venue_id: int | None = Field(default=None, ge=1)


class CardIn(BaseModel):
    venue_id: int = Field(ge=1, description="the venue that issues the card (printed on it)")


class CardOut(BaseModel):
    id: int
    number: str = Field(description="10 characters; printed grouped, e.g. 7K-3M9Q-X2AB")
    qr: str = Field(description="what the card's QR code holds")
    participant_id: int
    venue_id: int | None
    issued_at: datetime
    revoked_at: datetime | None


class CountOut(BaseModel):
    key: str = Field(description='an enum value, or "" for walk-ins counted without this detail')
    visits: int


class LiveOut(BaseModel):
    event_id: int
    visits: int = Field(description="check-ins and walk-ins")
    people: int = Field(description="different people who checked in")
    walk_ins: int
    by_age_band: list[CountOut]
    by_gender: list[CountOut]
    version: str


class ReportRowOut(BaseModel):
    key: str = Field(description="an enum value, a unit or venue id, or a month number")
    name: str
    visits: int
    people: int
    walk_ins: int


class BreakdownOut(BaseModel):
    key: str
    title: str
    rows: list[ReportRowOut]


class YearlyTotalsOut(BaseModel):
    year: int
    start: date = Field(description="first local day of the reporting window")
    end: date = Field(description="last local day of the reporting window (the cut-off)")
    unit: str
    rule: str
    visits: int
    people: int
    walk_ins: int = Field(description="of the visits, people counted at the door without checking in")
    breakdowns: list[BreakdownOut]
