"""A resident on a 360 px phone, in Zalo's in-app browser without JavaScript: checks in, opens "Dữ liệu
của tôi" from the confirmation, corrects the age group, downloads the file and deletes the data."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, expect
from sqlmodel import Session, select

from server.config import Settings
from server.models import CheckIn, Participant
from tests.browser.support import Server
from tests.browser.test_phone_checkin import ZALO, assert_fits_the_screen, fill_first_time, link, watch
from tests.factories import count_rows, make_event, make_tree, make_venue

pytestmark = pytest.mark.browser


def test_a_resident_sees_corrects_downloads_and_deletes_from_a_360px_phone(
    live_server: Server,
    new_context: Any,
    pixel5: dict[str, Any],
    session: Session,
    settings: Settings,
    shoot: Any,
) -> None:
    tree = make_tree(session)
    venue = make_venue(session, tree["village"], name="Nhà văn hóa thôn Bản Cưởm")
    event = make_event(session, venue, title="Ngày hội đọc sách thôn Bản Cưởm")
    phone: BrowserContext = new_context(
        **{**pixel5, "viewport": {"width": 360, "height": 740}, "user_agent": pixel5["user_agent"] + ZALO},
        java_script_enabled=False,
        accept_downloads=True,
    )
    page = phone.new_page()
    problems = watch(page)
    page.goto(link(settings, event))
    fill_first_time(page)
    page.locator('input[name="name"]').fill("Lý Thị Mai")
    page.get_by_role("button", name="Điểm danh", exact=True).tap()
    expect(page.get_by_text("Bạn đã điểm danh thành công")).to_be_visible()

    page.get_by_role("link", name="Dữ liệu của tôi").tap()
    expect(page.get_by_role("heading", level=1)).to_have_text("Dữ liệu của tôi")
    stored = page.locator("#stored")
    expect(stored).to_contain_text("Lý Thị Mai")
    expect(stored).to_contain_text("Ngày hội đọc sách thôn Bản Cưởm")
    assert_fits_the_screen(page)
    shoot(page, "1-my-data")

    page.locator("#correct .choices label").filter(has_text=re.compile("^Từ 60 tuổi$")).tap()
    page.get_by_role("button", name="Lưu thay đổi").tap()
    expect(page.get_by_text("Đã lưu thay đổi của bạn.")).to_be_visible()
    expect(page.get_by_role("radio", name="Từ 60 tuổi", exact=True)).to_be_checked()

    with page.expect_download() as download:
        page.get_by_role("link", name="Tải dữ liệu của tôi (tệp JSON)").tap()
    document = json.loads(download.value.path().read_text(encoding="utf-8"))
    assert document["participant"]["name"] == "Lý Thị Mai" and document["participant"]["age_band"] == "60+"

    delete = page.locator('form[action="/my-data/delete"]')
    delete.locator(".consent").tap()
    delete.get_by_role("button", name="Xóa dữ liệu của tôi").tap()
    expect(page.get_by_text("Dữ liệu của bạn đã được xóa.")).to_be_visible()
    assert_fits_the_screen(page)
    shoot(page, "2-deleted")
    assert not [c for c in phone.cookies() if c["name"] == "dd_device"]
    session.commit()
    participant = session.exec(select(Participant)).one()
    assert participant.name is None and participant.erased_at is not None
    assert count_rows(session, CheckIn) == 1
    assert problems == []
