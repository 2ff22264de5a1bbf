"""Jinja environments (one per language, so `{% trans %}` needs no per-request state) and filters."""

from __future__ import annotations

import sqlite3
import time
from datetime import date, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from babel.dates import format_date
from babel.numbers import format_decimal
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError
from sqlmodel import Session
from starlette.requests import Request
from starlette.responses import HTMLResponse

from server import codes, labels
from server.assets import asset_url, data_url, manifest_url, resident_css
from server.config import ROOT, Settings
from server.errors import MESSAGES
from server.i18n import LANGUAGES, pick_language, translations
from server.models import Meta, in_zone
from server.services.checkin import new_nonce
from server.services.identities import CONSENT_VERSION

TEMPLATES_DIR = ROOT / "templates"


class Templates:
    """Renders a template in the request's language with the app's common context."""

    def __init__(
        self, settings: Settings, engine: Engine | None = None, directory: Path = TEMPLATES_DIR
    ) -> None:
        self.settings = settings
        self.engine = engine
        self._demo: tuple[float, bool] = (float("-inf"), False)
        loader = FileSystemLoader(directory)
        self.envs = {language: self._make_env(loader, language) for language in LANGUAGES}

    def _make_env(self, loader: FileSystemLoader, language: str) -> Environment:
        env = Environment(
            loader=loader,
            autoescape=select_autoescape(["html", "svg", "xml"]),
            extensions=["jinja2.ext.i18n"],
            trim_blocks=True,
            lstrip_blocks=True,
        )
        env.install_gettext_translations(translations(language), newstyle=True)  # type: ignore[attr-defined]
        tz = self.settings.tz
        locale = "vi_VN" if language == "vi" else "en_GB"

        def local(value: datetime) -> datetime:
            return in_zone(value, tz)

        def day(value: datetime | date) -> str:
            if isinstance(value, datetime):
                value = local(value).date()
            return value.strftime("%d/%m/%Y")

        def weekday_day(value: datetime) -> str:
            return format_date(local(value).date(), "EEEE, dd/MM/yyyy", locale=locale)

        def clock(value: datetime) -> str:
            return local(value).strftime("%H:%M")

        def stamp(value: datetime) -> str:
            """HH:MM today, dd/mm/yyyy HH:MM on another day."""
            if local(value).date() == datetime.now(tz).date():
                return clock(value)
            return f"{day(value)} {clock(value)}"

        def span(start: datetime, end: datetime) -> str:
            """An event's time: one day with its weekday, or from one date and time to another."""
            if local(start).date() == local(end).date():
                return f"{weekday_day(start)} · {clock(start)}–{clock(end)}"
            return f"{day(start)} {clock(start)} – {day(end)} {clock(end)}"

        def number(value: float | int | None) -> str:
            return "" if value is None else format_decimal(value, locale=locale)

        catalogue = translations(language)

        def label(value: StrEnum) -> str:
            return catalogue.gettext(labels.label(value))

        def choices(values: list[StrEnum]) -> list[tuple[str, str]]:
            return [(value.value, label(value)) for value in values]

        env.filters.update(
            day=day,
            weekday_day=weekday_day,
            clock=clock,
            number=number,
            local=local,
            label=label,
            choices=choices,
            stamp=stamp,
            span=span,
            card=codes.pretty,
        )
        env.globals.update(
            asset=asset_url,
            data_url=data_url,
            resident_css=resident_css,
            manifest_url=manifest_url(language),
            language=language,
            settings=self.settings,
            labels=labels,
            error_messages=MESSAGES,
            consent_version=CONSENT_VERSION,
            new_nonce=new_nonce,
        )
        return env

    def render(
        self,
        request: Request,
        name: str,
        context: dict[str, Any] | None = None,
        status_code: int = 200,
        headers: dict[str, str] | None = None,
    ) -> HTMLResponse:
        language = pick_language(request)
        template = self.envs[language].get_template(name)
        ctx = {
            "request": request,
            "staff": getattr(request.state, "staff", None),
            "demo": self.is_demo(),
            "hx": request.headers.get("hx-request") == "true",
            **(context or {}),
        }
        response = HTMLResponse(template.render(ctx), status_code=status_code, headers=headers)
        response.headers["Vary"] = "HX-Request, Cookie, Accept-Language"
        return response

    def is_demo(self) -> bool:
        """Whether the database holds demo data (re-read at most every 30 s: it changes only by CLI)."""
        checked_at, value = self._demo
        if self.engine is None or time.monotonic() - checked_at < 30:
            return value
        try:
            with Session(self.engine) as session:
                row = session.get(Meta, "demo")
        except (OperationalError, sqlite3.OperationalError):
            # The database is busy or down: the page (often the 503 page saying so) shows without the
            # banner rather than failing too; the flag is read again on the next page.
            return value
        value = row is not None and row.value == "1"
        self._demo = (time.monotonic(), value)
        return value
