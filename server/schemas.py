"""JSON shapes of the API (/api/v1). Times are ISO 8601 with an offset; stored and returned in UTC."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from server.models import AgeBand, Campaign, CheckInMethod, EventStatus, EventType, Gender


class EventIn(BaseModel):
    title: str = Field(min_length=1, max_length=200)
    type: EventType
    venue_id: int
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    campaign: Campaign = Campaign.none
    expected_audience: int | None = Field(default=None, ge=0, le=1_000_000)
    description: str = Field(default="", max_length=2000)


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


class StaffCheckInIn(BaseModel):
    """A check-in entered by staff: a resident without a phone (profile) or a known device token."""

    nonce: str = Field(min_length=8, max_length=64, description="client idempotency key; a retry is a no-op")
    profile: ProfileIn | None = None
    device_token: str | None = Field(default=None, max_length=64)
    checked_in_at: AwareDatetime | None = Field(
        default=None, description="when it happened, for late or back-dated entries; default: now"
    )


class PublicCheckInIn(BaseModel):
    """A resident's own check-in with the code from the poster (what the check-in page posts)."""

    code: str = Field(min_length=9, max_length=32)
    nonce: str = Field(min_length=8, max_length=64)
    device_token: str | None = Field(default=None, max_length=64)
    profile: ProfileIn | None = None


class CheckInOut(BaseModel):
    id: int
    event_id: int
    participant_id: int
    checked_in_at: datetime
    method: CheckInMethod
    age_band: AgeBand
    gender: Gender
    created: bool = True
    device_token: str | None = Field(default=None, description="set when a new device token was made")


class CountOut(BaseModel):
    key: str
    visits: int


class LiveOut(BaseModel):
    event_id: int
    visits: int
    people: int
    by_age_band: list[CountOut]
    by_gender: list[CountOut]
    version: str


class ReportRowOut(BaseModel):
    key: str = Field(description="an enum value, a unit or venue id, or a month number")
    name: str
    visits: int
    people: int


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
    breakdowns: list[BreakdownOut]
