"""Browser tests: the real app in a uvicorn subprocess, driven by Debian's Chromium through Playwright.

The test process and the server share one database (the `database_url` fixture of tests/conftest.py, so
SQLite and, with TEST_DATABASE_URL, PostgreSQL) and one secret key, so the check-in codes the test computes
are the ones the server accepts.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright

from server.config import Settings
from tests.browser.support import SCREENSHOTS, Cable, Server, free_port, running_server

SECRET_KEY = "test-secret-key-0123456789-abcdefghijklmnop"  # the one tests/conftest.py uses
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture
def server_port() -> int:
    return free_port()


@pytest.fixture
def settings(database_url: str, tmp_path: Path, server_port: int) -> Settings:
    """The server's settings: its base URL is in every check-in link, the key signs every code."""
    return Settings(
        env="development",
        database_url=database_url,
        data_dir=tmp_path,
        base_url=f"http://127.0.0.1:{server_port}",
        secret_key=SECRET_KEY,
    )


@pytest.fixture
def app_port() -> int:
    """The port the app listens on; the browser only knows the base URL's, which is the cable's."""
    return free_port()


@pytest.fixture
def cable(server_port: int, app_port: int) -> Iterator[Cable]:
    """The network between the browser and the app, which a test can cut (tests/browser/support.py)."""
    line = Cable(server_port, app_port)
    yield line
    line.cut()


@pytest.fixture
def live_server(settings: Settings, app_port: int, tmp_path: Path, cable: Cable) -> Iterator[Server]:
    """The app, reached by the browser through the cable at the base URL in every link it makes."""
    with running_server(settings, app_port, tmp_path / "server.log") as server:
        yield Server(server.process, settings.base_url, server.log_path)


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    p = sync_playwright().start()
    yield p
    p.stop()


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
    yield browser
    browser.close()


@pytest.fixture
def pixel5(playwright: Playwright) -> dict[str, Any]:
    return {**playwright.devices["Pixel 5"], "locale": "vi-VN", "timezone_id": "Asia/Ho_Chi_Minh"}


@pytest.fixture
def new_context(browser: Browser) -> Iterator[Any]:
    """Makes browser contexts that are closed after the test (each one is a separate incognito profile)."""
    contexts: list[BrowserContext] = []

    def make(**options: Any) -> BrowserContext:
        context = browser.new_context(**options)
        context.set_default_timeout(10_000)
        contexts.append(context)
        return context

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def phone(new_context: Any, pixel5: dict[str, Any]) -> BrowserContext:
    """A resident's cheap Android phone: Pixel 5 screen and browser, Vietnamese."""
    context: BrowserContext = new_context(**pixel5)
    return context


@pytest.fixture
def desk(new_context: Any) -> BrowserContext:
    """An organizer's laptop."""
    context: BrowserContext = new_context(
        viewport={"width": 1280, "height": 900}, locale="vi-VN", timezone_id="Asia/Ho_Chi_Minh"
    )
    return context


@pytest.fixture
def shoot(request: pytest.FixtureRequest) -> Any:
    """shoot(page, "name") saves artifacts/screenshots/<test>[<db>]-<name>.png and returns its path."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    test = re.sub(r"[^A-Za-z0-9_.-]+", "-", request.node.name).strip("-")

    def take(page: Page, name: str, *, full_page: bool = True) -> Path:
        path = SCREENSHOTS / f"{test}-{name}.png"
        page.screenshot(path=str(path), full_page=full_page)
        return path

    return take
