"""The installable app's files: the manifest, the service worker and the pages it keeps for no signal."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from fastapi.testclient import TestClient

from server.assets import manifest_url
from server.config import ROOT
from server.routes.app_shell import shell_version

ICON_SIZES = {"192x192", "512x512"}


def test_manifest_names_the_app_its_scope_and_icons_that_exist(client: TestClient) -> None:
    response = client.get("/manifest.webmanifest")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/manifest+json")
    manifest = response.json()
    assert manifest["name"] and manifest["short_name"] == "Điểm danh"
    assert (manifest["id"], manifest["start_url"], manifest["scope"]) == ("/", "/", "/")
    assert manifest["display"] == "standalone" and manifest["theme_color"].startswith("#")
    assert {i["sizes"] for i in manifest["icons"] if i["purpose"] == "any"} == ICON_SIZES
    assert [i["sizes"] for i in manifest["icons"] if i["purpose"] == "maskable"] == ["512x512"]
    for icon in manifest["icons"]:
        image = client.get(icon["src"])
        assert image.status_code == 200 and image.content.startswith(b"\x89PNG")


def test_every_page_links_the_manifest_at_its_versioned_url(client: TestClient) -> None:
    link = f'<link rel="manifest" href="{manifest_url("vi").replace("&", "&amp;")}">'
    for path in ("/", "/login", "/offline"):
        assert link in client.get(path).text
    english = client.get("/", headers={"Accept-Language": "en"}).text
    assert f'href="{manifest_url("en").replace("&", "&amp;")}"' in english


def test_manifest_at_the_pages_url_is_kept_a_year_and_elsewhere_asked_again(client: TestClient) -> None:
    versioned = client.get(manifest_url("en"), headers={"Accept-Language": "vi"})
    assert versioned.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert versioned.json()["lang"] == "en", "the URL names the language, whatever the browser says"
    for stale in ("/manifest.webmanifest", "/manifest.webmanifest?lang=vi&v=0123456789"):
        response = client.get(stale, headers={"Accept-Language": "vi"})
        assert response.status_code == 200 and response.json()["lang"] == "vi"
        assert response.headers["cache-control"] == "no-cache"
    assert manifest_url("vi") != manifest_url("en")


def test_service_worker_is_never_cached_and_its_whole_shell_is_served(client: TestClient) -> None:
    response = client.get("/sw.js")
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["content-type"].startswith("text/javascript")
    config = json.loads(re.match(r"self\.DIEMDANH = (.*);\n", response.text).group(1))  # type: ignore[union-attr]
    assert re.fullmatch(r"[0-9a-f]{12}", config["version"]) and config["version"] == shell_version()
    assert "/offline" in config["shell"] and "/offline/checkin" in config["shell"]
    for url in config["shell"] + config["scripts"]:
        assert client.get(url).status_code == 200, url


def test_an_unchanged_worker_is_a_304_with_no_body(client: TestClient) -> None:
    """Browsers ask for /sw.js after each page of a returning phone: the usual answer has no body."""
    etag = client.get("/sw.js").headers["etag"]
    again = client.get("/sw.js", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["etag"] == etag and again.headers["cache-control"] == "no-cache"
    assert client.get("/sw.js", headers={"If-None-Match": '"other"'}).status_code == 200


def test_a_changed_translation_changes_the_workers_version(tmp_path: Path) -> None:
    """The offline pages are kept rendered in the phone's language: a new wording must renew them."""
    for part in ("static", "templates", "server/locale"):
        shutil.copytree(ROOT / part, tmp_path / part)
    assert shell_version(tmp_path) == shell_version()
    catalog = tmp_path / "server/locale/vi/LC_MESSAGES/offline.po"
    text = catalog.read_text()
    assert 'msgstr "Đang chờ gửi: {n}"' in text
    catalog.write_text(text.replace('msgstr "Đang chờ gửi: {n}"', 'msgstr "Chờ gửi: {n}"'))
    changed = shell_version(tmp_path)
    assert changed != shell_version()
    (tmp_path / "server/locale/vi/LC_MESSAGES/extra.po").write_text('msgid "Yes"\nmsgstr "Có"\n')
    assert shell_version(tmp_path) not in (changed, shell_version()), "a new catalogue counts too"


def test_offline_check_in_page_asks_the_first_time_questions_with_the_consent_notice(
    client: TestClient,
) -> None:
    page = client.get("/offline/checkin", headers={"Accept-Language": "vi"})
    assert page.status_code == 200
    assert "Không có sóng" in page.text
    assert 'name="consent"' in page.text and 'name="age_band"' in page.text
    assert 'name="home_unit_id"' not in page.text  # no venue is known offline
    assert 'data-children="0-5 6-11 12-15 "' in page.text
