"""A resident's rights over their data (Law 91/2025/QH15, Decree 356/2025/NĐ-CP): see it, download it,
correct it, withdraw consent, delete it. The resident acts from their own phone (staff None) or an organizer
acts for them; every action is one audit entry. Check-ins stay, counted: they carry their own copy of the
place, age band and gender, so a withdrawn or deleted participant is an anonymous person in the counts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlmodel import Session, col, select

from server.models import (
    CheckIn,
    ClubMember,
    Credential,
    CredentialKind,
    Event,
    OrgUnit,
    Participant,
    Staff,
    Venue,
    utcnow,
)
from server.services import audit, identities, names
from server.services.identities import Profile


@dataclass(frozen=True)
class Visit:
    event: str
    venue: str
    day: date


@dataclass(frozen=True)
class MyData:
    """Everything the app stores about one participant, as they are shown it."""

    participant: Participant
    home: OrgUnit | None
    cards: list[Credential]
    phones: int  # phones that still recognise them
    visits: list[Visit]


def my_data(session: Session, participant: Participant) -> MyData:
    """The participant's profile, active credentials and every check-in (event, place, day), newest first."""
    rows = session.exec(
        select(CheckIn, Event, Venue)
        .join(Event, col(Event.id) == CheckIn.event_id)
        .join(Venue, col(Venue.id) == CheckIn.venue_id)
        .where(CheckIn.participant_id == participant.id)
        .order_by(col(CheckIn.checked_in_at).desc(), col(CheckIn.id).desc())
    ).all()
    credentials = session.exec(
        select(Credential).where(
            Credential.participant_id == participant.id, col(Credential.revoked_at).is_(None)
        )
    ).all()
    return MyData(
        participant=participant,
        home=session.get(OrgUnit, participant.home_unit_id) if participant.home_unit_id else None,
        cards=[c for c in credentials if c.kind == CredentialKind.card],
        phones=sum(1 for c in credentials if c.kind == CredentialKind.device),
        visits=[
            Visit(event.title, venue.name, check_in.checked_in_at.date()) for check_in, event, venue in rows
        ],
    )


def as_json(data: MyData) -> dict[str, Any]:
    """The download: the same facts as the page, in plain keys."""
    p = data.participant
    return {
        "participant": {
            "number": p.id,
            "name": p.name,
            "age_band": p.age_band.value,
            "gender": p.gender.value,
            "home": data.home.name if data.home else None,
            "consent_at": p.consent_at.isoformat() if p.consent_at else None,
            "consent_version": p.consent_version,
            "registered_at": p.created_at.isoformat(),
        },
        "cards": [c.lookup for c in data.cards],
        "phones": data.phones,
        "check_ins": [{"event": v.event, "place": v.venue, "day": v.day.isoformat()} for v in data.visits],
    }


def download(session: Session, staff: Staff | None, participant: Participant) -> dict[str, Any]:
    """The participant's data as JSON; logged."""
    document = as_json(my_data(session, participant))
    audit.record(
        session,
        staff,
        audit.Action.participant_downloaded,
        target_kind="participant",
        target_id=participant.id,
    )
    session.commit()
    return document


def correct(session: Session, staff: Staff | None, participant: Participant, profile: Profile) -> Participant:
    """New name, age band, gender and home, under the same rules as a first check-in (no name under 16).
    Past check-ins keep the age band and gender they were counted with. The name stays with the place the
    person first told us who they are; only if none is known does it go to the staff member's unit (or,
    from the resident's phone, their home)."""
    identities.validate_profile(
        session, Profile(profile.age_band, profile.gender, profile.home_unit_id, profile.name, consent=True)
    )
    name = (profile.name or "").strip() or None
    changed = sorted(
        field
        for field, old, new in (
            ("name", participant.name, name),
            ("age_band", participant.age_band, profile.age_band),
            ("gender", participant.gender, profile.gender),
            ("home_unit_id", participant.home_unit_id, profile.home_unit_id),
        )
        if old != new
    )
    names.set_name(participant, name, staff.unit_id if staff else profile.home_unit_id)
    participant.age_band, participant.gender = profile.age_band, profile.gender
    participant.home_unit_id = profile.home_unit_id
    session.add(participant)
    audit.record(
        session,
        staff,
        audit.Action.participant_corrected,
        target_kind="participant",
        target_id=participant.id,
        detail={"fields": changed},
    )
    session.commit()
    return participant


def _revoke_all(session: Session, staff: Staff | None, participant: Participant, now: datetime) -> int:
    credentials = session.exec(
        select(Credential).where(
            Credential.participant_id == participant.id, col(Credential.revoked_at).is_(None)
        )
    ).all()
    for credential in credentials:
        credential.revoked_at, credential.revoked_by_id = now, staff.id if staff else None
        session.add(credential)
    return len(credentials)


def withdraw(
    session: Session, staff: Staff | None, participant: Participant, *, now: datetime | None = None
) -> Participant:
    """Consent withdrawn: the name is forgotten and no phone or card recognises them any more; the visits
    stay as anonymous counts (age band, gender and home stay: they identify nobody; counts need them)."""
    now = now or utcnow()
    revoked = _revoke_all(session, staff, participant, now)
    names.set_name(participant, None, None)
    participant.consent_at, participant.consent_version = None, None
    session.add(participant)
    audit.record(
        session,
        staff,
        audit.Action.consent_withdrawn,
        target_kind="participant",
        target_id=participant.id,
        detail={"credentials": revoked},
        now=now,
    )
    session.commit()
    return participant


def erase(session: Session, participant: Participant, now: datetime) -> int:
    """Remove (not commit) every identifying field: name (and where it was given), home, consent,
    credentials (card numbers too) and club rosters; returns how many credentials went. The check-ins
    stay, without the credential they used."""
    names.set_name(participant, None, None)
    participant.home_unit_id, participant.name_unit_id = None, None
    participant.consent_at, participant.consent_version = None, None
    participant.erased_at = now
    session.add(participant)
    credentials = session.exec(select(Credential).where(Credential.participant_id == participant.id)).all()
    ids = [c.id for c in credentials]
    if ids:
        for check_in in session.exec(select(CheckIn).where(col(CheckIn.credential_id).in_(ids))).all():
            check_in.credential_id = None
            session.add(check_in)
        session.flush()
    for row in [
        *credentials,
        *session.exec(select(ClubMember).where(ClubMember.participant_id == participant.id)).all(),
    ]:
        session.delete(row)
    return len(ids)


def delete(
    session: Session, staff: Staff | None, participant: Participant, *, now: datetime | None = None
) -> Participant:
    """The participant's identifying data is removed for good; their visits stay, counted, anonymous."""
    now = now or utcnow()
    removed = erase(session, participant, now)
    audit.record(
        session,
        staff,
        audit.Action.participant_deleted,
        target_kind="participant",
        target_id=participant.id,
        detail={"credentials": removed},
        now=now,
    )
    session.commit()
    return participant
