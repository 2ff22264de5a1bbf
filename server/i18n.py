"""Translations: gettext catalogues read from the .po files at start, and the language of a request."""

from __future__ import annotations

import io
from functools import cache
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations
from starlette.requests import Request

LOCALE_DIR = Path(__file__).resolve().parent / "locale"
LANGUAGES = ("vi", "en")
DEFAULT_LANGUAGE = "vi"
LANG_COOKIE = "lang"


@cache
def translations(language: str) -> NullTranslations:
    """The catalogue for a language, merged from every .po file of that language (one per screen family).

    msgids are English, so English needs no translation to be complete.
    """
    po_paths = sorted((LOCALE_DIR / language / "LC_MESSAGES").glob("*.po"))
    if not po_paths:
        return NullTranslations()
    merged: Catalog | None = None
    for po_path in po_paths:
        with po_path.open("rb") as po_file:
            catalog = read_po(po_file, locale=language)
        if merged is None:
            merged = catalog
            continue
        for message in catalog:
            if message.id and message.string:
                # Catalog.__setitem__ keeps an existing translation: delete first so the file wins.
                # (tests/test_i18n.py checks that files sharing a msgid translate it the same way.)
                if message.id in merged:
                    del merged[message.id]
                merged[message.id] = message
    assert merged is not None
    buffer = io.BytesIO()
    write_mo(buffer, merged)
    buffer.seek(0)
    return Translations(buffer)


def pick_language(request: Request) -> str:
    """The `lang` cookie if it names a language we have, else the browser's first match, else Vietnamese."""
    chosen = request.cookies.get(LANG_COOKIE)
    if chosen in LANGUAGES:
        return chosen
    for part in request.headers.get("accept-language", "").split(","):
        tag = part.split(";", 1)[0].strip().lower()
        primary = tag.split("-", 1)[0]
        if primary in LANGUAGES:
            return primary
    return DEFAULT_LANGUAGE


def gettext(language: str, message: str) -> str:
    return translations(language).gettext(message)
