"""Who may see a participant's name: one rule, as a SQL condition for lists and searches and as a check of
one participant.

A name is shown only to staff whose scope covers the unit where the participant first told us who they are
(`participant.name_unit_id`: the unit of the venue of that event, or of the venue or staff member that
registered them) or the participant's home unit; an administrator sees every name. Other staff see the
participant as one without a name, cannot find them by name, and cannot act for them (download, correct,
withdraw, delete). A name given at one commune's event is not handed to every commune the person visits
later (Law 91/2025/QH15: used only for the purpose it was given for). docs/security.md, "Names outside
their commune".
"""

from __future__ import annotations

import unicodedata

from sqlalchemy import case, exists, null, or_, true
from sqlalchemy.orm import aliased
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col, select

from server.auth import scope_path
from server.models import OrgUnit, Participant, Staff


def search_form(text: str) -> str:
    """Lower case without diacritics or extra spaces: "Nguyễn  Văn Đức" -> "nguyen van duc"."""
    plain = unicodedata.normalize("NFD", text).replace("đ", "d").replace("Đ", "D")
    return " ".join("".join(c for c in plain if not unicodedata.combining(c)).casefold().split())


def place_name(participant: Participant, unit_id: int | None) -> None:
    """Record where the participant told us who they are; the first place known stays (a correction or a
    later visit elsewhere never moves a name into another commune's view)."""
    if participant.name_unit_id is None:
        participant.name_unit_id = unit_id


def set_name(participant: Participant, name: str | None, given_at: int | None) -> None:
    """The one place a name is set (or forgotten): its search form with it, and where it was given."""
    name = (name or "").strip() or None
    participant.name, participant.search_name = name, search_form(name or "")[:200]
    place_name(participant, given_at)


def visible_clause(session: Session, staff: Staff) -> ColumnElement[bool]:
    """A WHERE condition on Participant: the staff member may see the name (and act for the person)."""
    path = scope_path(session, staff)
    if path is None:
        return true()
    # Aliases of their own, so the clause never correlates with the tables of the query it joins.
    given, home = aliased(OrgUnit), aliased(OrgUnit)
    return or_(
        exists().where(col(given.id) == Participant.name_unit_id, col(given.path).startswith(path)),
        exists().where(col(home.id) == Participant.home_unit_id, col(home.path).startswith(path)),
    )


def shown_column(session: Session, staff: Staff) -> ColumnElement[str | None]:
    """The name as the staff member may see it, NULL otherwise: select it next to a participant."""
    return case((visible_clause(session, staff), col(Participant.name)), else_=null())


def is_visible(session: Session, staff: Staff, participant: Participant) -> bool:
    """Whether the staff member may see this participant's name (the same rule, asked of one row)."""
    if participant.id is None:
        return False
    query = select(Participant.id).where(Participant.id == participant.id, visible_clause(session, staff))
    return session.exec(query).first() is not None


def shown(session: Session, staff: Staff, participant: Participant) -> str | None:
    """The participant's name if the staff member may see it; None shows them as anonymous."""
    if participant.name is None:
        return None
    return participant.name if is_visible(session, staff, participant) else None
