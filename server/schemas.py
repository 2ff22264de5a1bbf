"""JSON shapes of the API (/api/v1). Times are ISO 8601 with an offset; stored and returned in UTC."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    SkipValidation,
    model_validator,
)

from server.models import (
    FIRST_YEAR,
    LAST_YEAR,
    AgeBand,
    Campaign,
    Channel,
    CheckInMode,
    EventStatus,
    EventType,
    Gender,
    in_year_range,
)


def _in_years(value: datetime) -> datetime:
    if not in_year_range(value):
        raise ValueError(f"the year must lie between {FIRST_YEAR} and {LAST_YEAR}")
    return value


# Every time the API takes: with its offset, and within the app's years (a date in 9999 or 0001 would
# overflow once shifted to local time or by the check-in margin).
Moment = Annotated[AwareDatetime, AfterValidator(_in_years)]


def _drop_null(schema: dict[str, Any], model: type[BaseModel]) -> None:
    """The JSON schema of a patch: a field may be left out, never sent as null (but its `nullable`)."""
    for name, prop in schema.get("properties", {}).items():
        if name in getattr(model, "nullable", ()):
            continue
        options = [o for o in prop.pop("anyOf", []) if o.get("type") != "null"]
        if len(options) == 1:
            prop.update(options[0])
        elif options:
            prop["anyOf"] = options
        prop.pop("default", None)


class Patch(BaseModel):
    """A partial update: only the fields given are changed; a field given is null only if `nullable`."""

    model_config = ConfigDict(json_schema_extra=_drop_null)
    nullable: ClassVar[frozenset[str]] = frozenset()

    @model_validator(mode="before")
    @classmethod
    def _refuse_null(cls, data: Any) -> Any:
        if isinstance(data, dict):
            nulls = sorted(
                k for k, v in data.items() if v is None and k in cls.model_fields and k not in cls.nullable
            )
            if nulls:
                raise ValueError(f"{', '.join(nulls)} may be left out but not be null")
        return data


class Problem(BaseModel):
    """RFC 9457 problem details: every refusal of the API, with a stable `code` to branch on."""

    type: str = Field(description="urn:diemdanh:problem:<code>")
    title: str = Field(description="what went wrong, in the caller's language")
    status: int
    code: str = Field(description="the error code (errors.ErrorCode)")
    detail: str | None = None
    fields: dict[str, str] | None = Field(default=None, description="form field -> message")
    errors: list[dict[str, Any]] | None = Field(default=None, description="what failed validation")
    checked_in_at: datetime | None = Field(default=None, description="the earlier check-in (409)")


_PROBLEM_CONTENT = {"application/problem+json": {"schema": Problem.model_json_schema()}}
_PROBLEMS = {
    401: "No login, or a token or kiosk that is not valid",
    403: "Not allowed, or outside your scope; a read-only token or a cross-site request on a write",
    404: "No such thing, or a code that names none",
    409: "Conflicts with what is stored (already checked in, a key reused)",
    410: "Gone: check-in closed, event cancelled, card revoked",
    413: "The body is larger than DIEMDANH_MAX_BODY_KB",
    415: "The body is not JSON",
    422: "The input is not valid (out of range, control characters, null in a patch...)",
    429: "Too many new people from one network this minute; try again after Retry-After seconds",
    503: "The database is busy or unreachable; try again after Retry-After seconds",
}


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The refusals an operation can answer on top of the router's, for `responses=` of a route."""
    return {status: {"description": _PROBLEMS[status], "content": _PROBLEM_CONTENT} for status in statuses}


# What every API operation can answer, declared once per router (APIRouter(responses=...)): no login or a
# bad token or kiosk (401), a path or query that validation or the guard refuses (422), the database busy
# or unreachable (503). Each route adds its own with `problems(...)`.
PROBLEM_RESPONSES = problems(401, 422, 503)
# A write also meets the body's guard (413, 415), is refused to a read-only token and to a cross-site
# request (403), and can clash with a unique row (409, errors.database_refusal).
WRITE = (403, 409, 413, 415)
# An id in the path names nothing (404) or something out of the caller's scope (403).
BY_ID = (403, 404)
# The check-in engine's refusals: a code not open yet (403), a code or card that names nothing (404),
# already checked in or a key reused (409), closed, cancelled or revoked (410).
ENGINE = (403, 404, 409, 410)


class EventIn(BaseModel):
    title: str = Field(min_length=1, max_length=200)
    type: EventType
    venue_id: int
    starts_at: Moment
    ends_at: Moment
    campaign: Campaign = Campaign.none
    expected_audience: int | None = Field(default=None, ge=0, le=1_000_000)
    description: str = Field(default="", max_length=2000)
    checkin_mode: CheckInMode = Field(
        default=CheckInMode.poster, description="which codes open check-in: poster, rotating (screen) or both"
    )


class EventPatch(Patch):
    """Only the fields given are changed; only expected_audience may be null (not known)."""

    nullable = frozenset({"expected_audience"})

    title: str | None = Field(default=None, min_length=1, max_length=200)
    type: EventType | None = None
    venue_id: int | None = None
    starts_at: Moment | None = None
    ends_at: Moment | None = None
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
    checked_in_at: Moment | None = CLAIMED


class PublicCheckInIn(BaseModel):
    """A resident's own check-in with the code from the poster (what the check-in page posts)."""

    code: str = Field(min_length=9, max_length=32)
    nonce: str = KEY
    device_token: str | None = Field(default=None, max_length=64)
    profile: ProfileIn | None = None
    rotation: str | None = Field(
        default=None, max_length=16, description="the `t` of a rotating screen code's link"
    )
    checked_in_at: Moment | None = CLAIMED


class HeadcountIn(BaseModel):
    """A change of the walk-in count (people counted at the door who do not check in)."""

    nonce: str = KEY
    delta: int = Field(ge=-500, le=500, description="+n or -n, not 0")
    age_band: AgeBand | None = None
    gender: Gender | None = None
    counted_at: Moment | None = CLAIMED


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
    claimed_at: Moment | None = CLAIMED
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
    who: str | None = Field(
        default=None, description="the participant's name, if given and yours to see (staff only)"
    )
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
    name: str | None = Field(
        description="only adults who chose to give it, and only to staff of the area where it was given or "
        "where the person lives (null otherwise)"
    )
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


class TokenIn(BaseModel):
    name: str = Field(min_length=1, max_length=100, description="what the token is for")
    read_only: bool = Field(default=False, description="refused (403 `token_read_only`) on anything but GET")


class TokenOut(BaseModel):
    id: int
    name: str
    prefix: str = Field(description="the first characters of the token, to recognise it")
    read_only: bool
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None = Field(
        description="set when revoked, when the password changed or when the account was deactivated"
    )


class NewTokenOut(TokenOut):
    token: str = Field(description="the token itself: shown this once, only its hash is stored")
