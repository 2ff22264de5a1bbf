"""Every message the code shows has a Vietnamese translation, and the pages speak the visitor's language."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

from babel.messages.pofile import read_po
from fastapi.testclient import TestClient

from server.config import ROOT
from server.i18n import gettext


def _i18n_script():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("i18n_script", ROOT / "scripts" / "i18n.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_message_has_a_vietnamese_translation() -> None:
    assert _i18n_script().untranslated("vi") == []


def test_translations_keep_their_placeholders() -> None:
    for po_path in sorted((ROOT / "server" / "locale" / "vi" / "LC_MESSAGES").glob("*.po")):
        with Path(po_path).open("rb") as po_file:
            for message in read_po(po_file):
                if not message.id or not isinstance(message.id, str):
                    continue
                # Templates format every message (jinja's newstyle gettext): the same placeholders, and a
                # percent sign only as %% or a placeholder, or the page fails in Vietnamese alone.
                assert _placeholders(message.id) == _placeholders(str(message.string)), (
                    po_path.name,
                    message.id,
                )


def _placeholders(text: str) -> list[str]:
    return sorted(re.findall(r"%(?:\(\w+\))?[sd%]|%", text))


def test_vietnamese_is_the_default_language() -> None:
    assert gettext("vi", "Check in") == "Điểm danh"
    assert gettext("en", "Check in") == "Check in"


def test_home_page_in_vietnamese_by_default_and_english_on_request(client: TestClient) -> None:
    assert "Điểm danh sự kiện" in client.get("/").text
    client.cookies.set("lang", "en")
    assert "Check in to an event" in client.get("/").text


def test_files_sharing_a_message_translate_it_the_same_way() -> None:
    seen: dict[str, tuple[str, str]] = {}
    for po_path in sorted((ROOT / "server" / "locale" / "vi" / "LC_MESSAGES").glob("*.po")):
        with Path(po_path).open("rb") as po_file:
            for message in read_po(po_file):
                if not message.id or not isinstance(message.id, str):
                    continue
                if message.id in seen:
                    assert seen[message.id][1] == message.string, (
                        message.id,
                        seen[message.id][0],
                        po_path.name,
                    )
                seen[message.id] = (po_path.name, str(message.string))
