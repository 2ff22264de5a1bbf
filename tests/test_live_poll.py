"""The organizer's idle live poll: its version changes with every change the live counts show, and asking
for it is one read-only statement (thousands of organizer pages ask every second)."""

from __future__ import annotations

import re
import secrets
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import event as sa_event
from sqlmodel import Session

from server.config import Settings
from server.models import Role, utcnow
from server.services import attendance, flood
from server.services.checkin import check_in
from server.services.headcounts import HeadcountRequest, change_headcount
from tests.factories import login, make_event, make_staff, make_tree, make_venue
from tests.test_checkin import phone

WRITES = ("INSERT", "UPDATE", "DELETE")


def test_version_changes_with_each_check_in_headcount_exclusion_and_undo(
    session: Session, settings: Settings
) -> None:
    units = make_tree(session)
    event = make_event(session, make_venue(session, units["village"]))
    organizer = make_staff(session, Role.organizer, units["commune"])
    event_id = event.id or 0
    seen = [attendance.live_version(session, event_id)]
    assert attendance.live_version(session, event_id) == seen[-1]  # nothing changed, same version

    check_in(session, settings, phone(event, settings), now=utcnow(), address="192.0.2.1")
    seen.append(attendance.live_version(session, event_id))
    request = HeadcountRequest(key=secrets.token_urlsafe(16), event_id=event_id, delta=1)
    change_headcount(session, settings, request, staff=organizer)
    seen.append(attendance.live_version(session, event_id))
    minus = HeadcountRequest(key=secrets.token_urlsafe(16), event_id=event_id, delta=-1)
    change_headcount(session, settings, minus, staff=organizer)  # back to the same total, still a change
    seen.append(attendance.live_version(session, event_id))
    flooded = check_in(session, settings, phone(event, settings), now=utcnow(), address="192.0.2.2")
    flooded.check_in.suspicious = True  # as the flood budget marks it (services/flood.py)
    session.add(flooded.check_in)
    session.commit()
    seen.append(attendance.live_version(session, event_id))
    exclusion = flood.exclude(session, organizer, event, now=utcnow())
    assert exclusion.count == 1
    seen.append(attendance.live_version(session, event_id))
    flood.undo(session, organizer, event, exclusion.id or 0, now=utcnow() + timedelta(minutes=1))
    seen.append(attendance.live_version(session, event_id))
    assert len(set(seen)) == len(seen), seen

    other = make_event(session, make_venue(session, units["village"], name="Thư viện thôn"))
    before = attendance.live_version(session, event_id)
    check_in(session, settings, phone(other, settings), now=utcnow(), address="192.0.2.3")
    assert attendance.live_version(session, event_id) == before  # another event's check-in is not a change


def test_idle_poll_answers_204_with_one_version_statement_and_no_write(
    client: TestClient, session: Session, settings: Settings
) -> None:
    units = make_tree(session)
    event = make_event(session, make_venue(session, units["village"]))
    login(client, make_staff(session, Role.organizer, units["commune"]))
    for n in range(3):
        check_in(session, settings, phone(event, settings), now=utcnow(), address=f"192.0.2.{n + 1}")
    first = client.get(f"/events/{event.id}/live", headers={"HX-Request": "true"})
    version = re.search(r"live\?v=([\d.]+)", first.text).group(1)  # type: ignore[union-attr]
    assert 'id="live-visits">3<' in first.text

    sent: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        sent.append(" ".join(statement.split()))

    engine = client.app.state.engine  # type: ignore[attr-defined]
    sa_event.listen(engine, "before_cursor_execute", record)
    try:
        idle = client.get(f"/events/{event.id}/live", params={"v": version})
    finally:
        sa_event.remove(engine, "before_cursor_execute", record)
    assert idle.status_code == 204 and idle.content == b""
    assert not [s for s in sent if s.split(" ", 1)[0].upper() in WRITES], sent
    counting = [s for s in sent if "count(" in s.lower()]
    assert len(counting) == 1, counting  # the version: one statement
    loaded = {s.split(".", 1)[0].split()[-1].lower() for s in sent if re.match(r"SELECT \w+\.id,", s)}
    assert loaded.isdisjoint({"check_in", "event", "venue"}), loaded  # only the login's and the scope's rows


def test_idle_poll_is_refused_out_of_scope_even_with_the_right_version(
    client: TestClient, session: Session, settings: Settings
) -> None:
    units = make_tree(session)
    event = make_event(session, make_venue(session, units["village"]))
    version = attendance.live_version(session, event.id or 0)
    login(client, make_staff(session, Role.organizer, units["other"]))  # the neighbouring commune's
    refused = client.get(f"/events/{event.id}/live", params={"v": version})
    assert refused.status_code == 403
    missing = client.get("/events/999999/live", params={"v": version})
    assert missing.status_code == 404
