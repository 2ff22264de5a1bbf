"""What the database holds after a load run, read with the app's models: check-ins per event, doubles, and
the check-in of each phone the client saw acknowledged."""

from __future__ import annotations

from urllib.parse import urlsplit

from _common import Fixture
from sqlalchemy import distinct, func
from sqlmodel import Session, col, select

from server.config import Settings
from server.db import make_engine
from server.models import CheckIn, Credential, CredentialKind
from server.services.identities import device_hash

CHUNK = 500


class Stored:
    def __init__(self, settings: Settings, fixture: Fixture) -> None:
        self.settings = settings
        self.engine = make_engine(settings)
        self.events: dict[str, int] = {}
        self.know(fixture)

    def know(self, fixture: Fixture) -> None:
        """Remember which check-in path is which event."""
        for link, event_id in zip(fixture.links, fixture.event_ids, strict=True):
            self.events[urlsplit(link).path] = event_id

    def event_of(self, path: str) -> int:
        return self.events[path]

    def counts(self, events: list[int]) -> dict[int, int]:
        """Check-ins stored per event."""
        with Session(self.engine) as session:
            rows = session.exec(
                select(CheckIn.event_id, func.count())
                .where(col(CheckIn.event_id).in_(events))
                .group_by(col(CheckIn.event_id))
            ).all()
        return {event: 0 for event in events} | {event: int(n) for event, n in rows}

    def doubles(self, events: list[int]) -> list[str]:
        """Events where a person or a nonce was stored twice (the constraints forbid it: this checks them)."""
        with Session(self.engine) as session:
            rows = session.exec(
                select(
                    CheckIn.event_id,
                    func.count(),
                    func.count(distinct(CheckIn.participant_id)),
                    func.count(distinct(CheckIn.nonce)),
                )
                .where(col(CheckIn.event_id).in_(events))
                .group_by(col(CheckIn.event_id))
            ).all()
        return [
            f"event {event}: {n} check-ins of {people} people with {nonces} nonces"
            for event, n, people, nonces in rows
            if not n == people == nonces
        ]

    def each_once(self, tokens: list[str], event: int, acked: int) -> list[str]:
        """The phone behind each acknowledged first-time check-in holds exactly one check-in at the event."""
        problems = []
        if len(tokens) != acked or len(set(tokens)) != len(tokens):
            problems.append(f"{acked} acknowledged, but {len(set(tokens))} distinct device tokens handed out")
        found: dict[str, int] = {}
        with Session(self.engine) as session:
            for start in range(0, len(tokens), CHUNK):
                lookups = [device_hash(token) for token in tokens[start : start + CHUNK]]
                rows = session.exec(
                    select(Credential.lookup, func.count(col(CheckIn.id)))
                    .join(CheckIn, col(CheckIn.participant_id) == col(Credential.participant_id))
                    .where(
                        Credential.kind == CredentialKind.device,
                        col(Credential.lookup).in_(lookups),
                        CheckIn.event_id == event,
                    )
                    .group_by(col(Credential.lookup))
                ).all()
                found |= {lookup: int(n) for lookup, n in rows}
        missing = sum(1 for token in set(tokens) if device_hash(token) not in found)
        doubled = sum(1 for n in found.values() if n != 1)
        if missing or doubled:
            problems.append(
                f"of the acknowledged phones, {missing} have no check-in, {doubled} more than one"
            )
        return problems

    def close(self) -> None:
        self.engine.dispose()
