"""The app's own CSP is satisfied by its own pages: an admin opens every page the app serves (ids of real
rows filled in, as in the permission walk) in Chromium, and no page breaks the policy or fails a script."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from playwright.sync_api import BrowserContext

from server.config import Settings
from server.models import Role
from tests.browser.support import Server
from tests.factories import PASSWORD, make_staff
from tests.test_permissions import PUBLIC, _fill, _routes, world  # noqa: F401  (world: a fixture)

pytestmark = pytest.mark.browser

# Counts every refusal of the page's CSP, whatever directive, before any of the page's own scripts run.
LISTEN = """
window.__csp = [];
document.addEventListener('securitypolicyviolation', (e) => window.__csp.push(
  e.violatedDirective + ' ' + (e.blockedURI || 'inline') + ' ' + (e.sourceFile || '') + ':' + e.lineNumber));
"""


def test_every_page_satisfies_the_apps_own_csp(
    live_server: Server,
    desk: BrowserContext,
    session,
    settings: Settings,
    world: dict,  # noqa: F811
) -> None:  # type: ignore[no-untyped-def]
    admin = make_staff(session, Role.admin)
    desk.add_init_script(LISTEN)
    page = desk.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(f"{page.url}: {error}"))
    page.on(
        "console",
        lambda msg: (
            errors.append(f"{page.url}: {msg.text}")
            if msg.type == "error" and "Content Security Policy" in msg.text
            else None
        ),
    )
    page.goto(f"{live_server.base_url}/login")
    page.locator('input[name="username"]').fill(admin.username)
    page.locator('input[name="password"]').fill(PASSWORD)
    page.locator('form[action="/login"] button').click()
    page.wait_for_url(lambda url: "/login" not in url)

    visited = []
    app = FastAPI()  # _routes reads the routers, not the app
    for method, path in _routes(app):
        if method != "GET" or path.startswith("/api/v1"):
            continue
        url = f"{live_server.base_url}{_fill(path, world['ids'])}"
        head = page.request.get(url, max_redirects=0)
        if not head.headers.get("content-type", "").startswith("text/html"):
            continue  # a file (CSV, XLSX, PNG), not a page
        page.goto(url)
        page.wait_for_load_state("networkidle")
        violations = page.evaluate("window.__csp")
        assert violations == [], (path, violations)
        visited.append(path)
    assert errors == []
    assert len(visited) >= 25 and "/api/docs" in visited and "/events/{event_id}" in visited, visited
    print(f"{len(visited)} pages open under the CSP without a violation")
