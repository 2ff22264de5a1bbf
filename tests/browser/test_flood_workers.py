"""The flood budget (services/flood.py) holds across processes: the real app under `uvicorn --workers 2`,
flooded from one address (127.0.0.1) by concurrent requests, each steered to a chosen worker (as in
test_live_workers.py), so both processes store new people at the same event at the same time.

Count-based, not timed: whatever minute boundaries the flood happens to cross, each minute of arrival holds
at most the hard limit of new people from the address and at most the budget of them unflagged; every
request is answered 201 or 429 and the 201s are exactly the rows stored; a phone that came before is not
limited.
"""

from __future__ import annotations

import json
import secrets
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

import pytest
from sqlmodel import Session, col, select

from server.config import Settings
from server.models import CheckIn
from server.services import flood
from server.services.scans import code_for
from tests.browser.support import running_server
from tests.browser.test_live_workers import connection_to, worker_pids
from tests.factories import make_event, make_tree, make_venue

pytestmark = pytest.mark.browser

WORKERS = 2
FLOOD = 200  # more than three times the hard limit (60 at the default budget of 20)
THREADS = 4
PROFILE = {"age_band": "25-59", "gender": "female", "consent": True}


def _post(
    worker: int, workers: set[int], port: int, body: dict[str, object]
) -> tuple[int, dict[str, object]]:
    connection, _tries = connection_to(worker, workers, port)
    try:
        connection.request(
            "POST",
            "/api/v1/checkins",
            body=json.dumps(body),
            headers={"Content-Type": "application/json", "Connection": "close", "Accept-Language": "vi"},
        )
        response = connection.getresponse()
        return response.status, json.loads(response.read() or b"{}")
    finally:
        connection.close()


def test_one_address_flooding_two_workers_stays_within_the_budget(
    session: Session, settings: Settings, server_port: int, tmp_path: Path
) -> None:
    venue = make_venue(session, make_tree(session)["village"])
    earlier, event = make_event(session, venue), make_event(session, venue)
    code, earlier_code = code_for(event, settings), code_for(earlier, settings)
    budget, hard = flood.budget(settings, event), flood.hard_limit(settings, event)

    with running_server(settings, server_port, tmp_path / "server.log", workers=WORKERS) as server:
        workers = worker_pids(server)
        assert len(workers) == WORKERS, f"uvicorn runs {WORKERS} worker processes, found {workers}"
        order = sorted(workers)
        status, first = _post(
            order[0],
            workers,
            server_port,
            {"code": earlier_code, "nonce": secrets.token_urlsafe(16), "profile": PROFILE},
        )
        assert status == 201, first
        token = first["device_token"]

        def send(number: int) -> tuple[int, int, dict[str, object]]:
            body = {"code": code, "nonce": secrets.token_urlsafe(16), "profile": PROFILE}
            worker = order[number % WORKERS]
            status, answer = _post(worker, workers, server_port, body)
            return worker, status, answer

        with ThreadPoolExecutor(THREADS) as pool:
            answers = list(pool.map(send, range(FLOOD)))
        # A resident who came before checks in with one tap from the same (flooded) address.
        back, answer = _post(
            order[1],
            workers,
            server_port,
            {"code": code, "nonce": secrets.token_urlsafe(16), "device_token": token},
        )
        assert back == 201, answer
        assert worker_pids(server) == workers, "no worker died or was replaced"

    statuses = [status for _worker, status, _answer in answers]
    assert set(statuses) <= {201, 429}, statuses
    assert {w for w, s, _a in answers if s == 201} == set(order), "both workers stored new people"
    refusals = [a for _w, s, a in answers if s == 429]
    assert all(a["code"] == "checkin_busy" for a in refusals)

    session.commit()
    rows = session.exec(select(CheckIn).where(CheckIn.event_id == event.id).order_by(col(CheckIn.id))).all()
    newcomers = [r for r in rows if r.source is not None]
    assert len(newcomers) == statuses.count(201) and len(rows) == len(newcomers) + 1
    minutes: dict[datetime, list[CheckIn]] = {}
    for row in newcomers:
        minutes.setdefault(flood.minute_of(row.received_at), []).append(row)
    for minute, stored in minutes.items():
        assert len(stored) <= hard, (minute, len(stored))
        assert sum(1 for r in stored if not r.suspicious) <= budget, minute
        if len(stored) > budget:
            assert all(r.suspicious for r in stored), minute
    assert statuses.count(201) <= hard * len(minutes)
    assert statuses.count(429) >= FLOOD - hard * len(minutes)
    print(
        f"{FLOOD} new people from one address over {WORKERS} workers: {statuses.count(201)} stored "
        f"({sum(1 for r in newcomers if not r.suspicious)} unflagged) in {len(minutes)} minute(s), "
        f"{statuses.count(429)} refused"
    )
