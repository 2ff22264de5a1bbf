"""Schemathesis over the app's own /openapi.json, in-process (ASGI), on each engine: as an admin with an
API token (which reaches the staff API) and without a login, with valid and with invalid input. Every
answer must be no server error and match the schema: its status, its content type and its body."""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlmodel import Session

from server.auth import create_api_token
from server.models import Role
from tests.factories import make_event, make_staff, make_tree, make_venue

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
EXAMPLES = 12  # per operation, per caller and per mode: about a minute per engine on two cores


def _explore(
    operation: Any, caller: str, headers: dict[str, str], mode: GenerationMode, statuses: Counter[int]
) -> list[str]:
    """Run one operation's generated cases for one caller; each failure, and a tally of the statuses."""
    cases = 0
    failures: list[str] = []

    @given(case=operation.as_strategy(generation_mode=mode))
    @hypothesis_settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,  # the same cases every run: CI is never red by luck
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any) -> None:
        nonlocal cases
        cases += 1
        response = case.call(headers=headers)
        statuses[response.status_code] += 1
        try:
            case.validate_response(response, checks=CHECKS, headers=headers)
        except BaseExceptionGroup as failure:  # collected, so that one run reports every cause
            failures.append(f"{operation.label} ({caller}, {mode.value}): {str(failure)[:800]}")

    try:
        run()
    except Unsatisfiable:  # nothing to make invalid (an operation without parameters or body)
        assert mode == GenerationMode.NEGATIVE and cases == 0
    return failures


def test_schemathesis_finds_no_server_error_and_no_schema_violation(app: Any, session: Session) -> None:
    tree = make_tree(session)
    make_event(session, make_venue(session, tree["commune"]))
    admin = make_staff(session, Role.admin)
    _record, token = create_api_token(session, admin, "schemathesis")
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    callers: dict[str, dict[str, str]] = {
        "anonymous": {},
        "admin token": {"Authorization": f"Bearer {token}"},
    }
    statuses: Counter[int] = Counter()
    failures: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        for caller, headers in callers.items():
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                failures += _explore(operation, caller, headers, mode, statuses)
    tally = ", ".join(f"{status}: {n}" for status, n in sorted(statuses.items()))
    print(f"schemathesis: {statuses.total()} cases, {len(failures)} failures ({tally})")
    assert statuses[200] + statuses[201] > 0  # the admin's token reached the staff API
    assert failures == [], "\n\n".join(failures)


def test_every_method_the_schema_does_not_declare_is_a_405_with_allow(app: Any, session: Session) -> None:
    """What schemathesis's `unsupported_method` check asks (it only runs in its coverage phase, which this
    file's in-process runs do not use): on every API path, each method the schema does not declare is a
    405 problem whose `Allow` names exactly the declared methods (and HEAD where GET is served)."""
    admin = make_staff(session, Role.admin)
    _record, token = create_api_token(session, admin, "methods")
    headers = {"Authorization": f"Bearer {token}"}
    client = TestClient(app)
    checked = 0
    for path, operations in client.get("/openapi.json").json()["paths"].items():
        declared = {method.upper() for method in operations}
        allow = [
            m for m in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE") if m in declared | _head(declared)
        ]
        url = re.sub(r"\{\w+\}", "1", path)
        for method in sorted({"GET", "POST", "PUT", "PATCH", "DELETE"} - declared):
            response = client.request(method, url, headers=headers, json={})
            assert response.status_code == 405, (method, path, response.status_code)
            assert response.headers["content-type"] == "application/problem+json", (method, path)
            assert response.json()["code"] == "method_not_allowed", (method, path)
            assert response.headers["allow"] == ", ".join(allow), (method, path)
            checked += 1
    assert checked >= 60


def _head(declared: set[str]) -> set[str]:
    return {"HEAD"} if "GET" in declared else set()
