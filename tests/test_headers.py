"""Transport and caching: HSTS under https only, no-store on staff answers and never on static files or
the resident's public pages, the same security headers on a refused cross-site post."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import Session

from server.auth import create_api_token
from server.models import Role
from tests.factories import login, make_staff, make_tree

HSTS = "max-age=31536000"


@pytest.fixture
def https_client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as client:
        yield client


def test_hsts_is_sent_over_https_only(client: TestClient, https_client: TestClient) -> None:
    assert https_client.get("/login").headers["strict-transport-security"] == HSTS
    assert https_client.get("/healthz").headers["strict-transport-security"] == HSTS
    assert "strict-transport-security" not in client.get("/login").headers


def test_a_refused_cross_site_post_over_https_carries_hsts_too(https_client: TestClient) -> None:
    refused = https_client.post("/login", headers={"Origin": "https://evil.example"})
    assert refused.status_code == 403
    assert refused.headers["strict-transport-security"] == HSTS
    assert refused.headers["x-frame-options"] == "DENY"


def test_staff_pages_and_api_answers_are_no_store(client: TestClient, session: Session) -> None:
    staff = make_staff(session, Role.organizer, make_tree(session)["commune"])
    _record, token = create_api_token(session, staff, "x")
    api = client.get("/api/v1/events", headers={"Authorization": f"Bearer {token}"})
    assert api.status_code == 200 and api.headers["cache-control"] == "no-store"
    login(client, staff)
    page = client.get("/events")
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"


def test_static_files_and_public_pages_keep_their_caching(client: TestClient, session: Session) -> None:
    staff = make_staff(session, Role.organizer, make_tree(session)["commune"])
    login(client, staff)  # even for a logged-in visitor
    page = client.get("/events").text
    href = page.split('rel="stylesheet" href="')[1].split('"')[0]
    assert client.get(href).headers["cache-control"] == "public, max-age=31536000, immutable"
    assert client.get("/sw.js").headers["cache-control"] == "no-cache"
    assert client.get("/offline").headers["cache-control"] == "no-cache"  # the offline shell it caches
