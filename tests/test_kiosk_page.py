"""The kiosk's page as the server sends it: the same for every phone, its own CSP, its decoder kept apart."""

from __future__ import annotations

import json
import re

from fastapi.testclient import TestClient

from server.config import ROOT
from server.routes.app_shell import OFFLINE_TEMPLATES


def worker_config(client: TestClient) -> dict[str, list[str]]:
    source = client.get("/sw.js").text
    return json.loads(re.match(r"self\.DIEMDANH = (.*);\n", source).group(1))  # type: ignore[union-attr,no-any-return]


def test_kiosk_page_alone_may_compile_webassembly(client: TestClient) -> None:
    kiosk = client.get("/kiosk", headers={"Accept-Language": "vi"})
    assert kiosk.status_code == 200
    assert "Bật camera" in kiosk.text and "Số thẻ" in kiosk.text
    policies = kiosk.headers.get_list("content-security-policy")
    assert len(policies) == 1 and "script-src 'self' 'wasm-unsafe-eval';" in policies[0]
    for path in ("/", "/login", "/offline/checkin"):
        other = client.get(path).headers.get_list("content-security-policy")
        assert len(other) == 1 and "wasm-unsafe-eval" not in other[0], path


def test_kiosk_decoder_is_served_by_us_and_kept_apart_from_the_shell(client: TestClient) -> None:
    page = client.get("/kiosk").text
    decoder = re.search(r'data-decoder="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    wasm = re.search(r'data-wasm="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    assert decoder.startswith("/static/vendor/") and wasm.startswith("/static/vendor/")
    served = client.get(wasm)
    assert served.status_code == 200 and served.headers["content-type"] == "application/wasm"
    assert served.content.startswith(b"\x00asm")
    config = worker_config(client)
    assert {decoder, wasm, "/kiosk"} <= set(config["kiosk"])
    # Residents' phones precache the shell only: the 460 KB decoder is not in it.
    assert not {decoder, wasm} & set(config["shell"])
    for url in config["kiosk"]:
        assert client.get(url).status_code == 200, url


def test_a_paired_phone_finds_its_kiosk_from_the_start_page(client: TestClient) -> None:
    """The installed app opens at /: a kiosk phone gets a way to its kiosk there, other phones do not."""
    assert 'href="/kiosk"' not in client.get("/", headers={"Accept-Language": "vi"}).text
    client.cookies.set("dd_kiosk", "ddk_anything")
    assert "Mở máy điểm danh" in client.get("/", headers={"Accept-Language": "vi"}).text


def test_the_worker_version_covers_every_template_of_the_pages_it_keeps() -> None:
    """A kept page is rendered from its template and everything that template pulls in: a change to any of
    them must install a new worker, or phones would keep showing the old page."""
    pulled = re.compile(r"""{%-?\s*(?:extends|include|import)\s+"([^"]+)\"""")
    seen, todo = set(OFFLINE_TEMPLATES), list(OFFLINE_TEMPLATES)
    while todo:
        for name in pulled.findall((ROOT / todo.pop()).read_text()):
            path = f"templates/{name}"
            assert path in OFFLINE_TEMPLATES, f"{path} is part of a kept page but not of the worker's version"
            if path not in seen:
                seen.add(path)
                todo.append(path)
