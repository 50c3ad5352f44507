"""The mock's live page in headless Chromium (tests/browser.py), against a real mock process
with real RADIUS traffic: the timeline shows each request, the step that answered and the
reply, a delayed reply's delay and when it was sent; the filters narrow it; the activate button
changes the mock's active scenario; a screenshot has the parts that matter on screen."""

from __future__ import annotations

import io
import re
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageStat

from mock_radius.pytest_plugin import MockRadius, start_mock_radius
from tests.radius_client import build_request, send

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"
SECRET = "testing123"
SCALE = 0.5  # push approves after 2 s x 0.5
VIEWPORT = {"width": 1400, "height": 900}


@pytest.fixture
def mock() -> Iterator[MockRadius]:
    server = start_mock_radius(SCENARIOS, time_scale=SCALE)
    yield server
    assert server.stop() == 0


@pytest.fixture
def page(browser: Any, mock: MockRadius) -> Iterator[Any]:
    context = browser.new_context(viewport=VIEWPORT)
    opened = context.new_page()
    problems: list[str] = []
    opened.on("pageerror", lambda error: problems.append(str(error)))
    opened.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    opened.goto(f"http://127.0.0.1:{mock.control_port}/")
    opened.wait_for_selector('#live[data-state="open"]')
    opened.problems = problems
    yield opened
    context.close()
    assert problems == []  # no script error, nothing the page's CSP refused, nothing missing


def _row(page: Any, user: str, step: str) -> Any:
    return page.locator("#timeline li.entry", has=page.locator(".user", has_text=user)).filter(
        has=page.locator(".step", has_text=step)
    )


@pytest.mark.slow
def test_the_timeline_shows_requests_steps_replies_and_delays(page: Any, mock: MockRadius) -> None:
    from playwright.sync_api import expect

    challenge = send(mock.address, build_request(SECRET, "carol", "carol-pass")).reply()
    assert challenge is not None
    state = challenge["State"][0]
    send(mock.address, build_request(SECRET, "carol", "123456", state=state))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:  # the push, not awaited
        udp.sendto(build_request(SECRET, "paula", "push-secret").RequestPacket(), mock.address)
        pending = _row(page, "paula", "approved")
        expect(pending.locator(".delay-text")).to_have_text("delay 1.00 s, pending")
        udp.settimeout(5)
        udp.recvfrom(4096)
    send(mock.address, build_request(SECRET, "rex", "x"))

    first = _row(page, "carol", "challenge")
    expect(first.locator(".request")).to_have_text("Access-Request (PAP)")
    expect(first.locator(".reply")).to_have_text("Access-Challenge")
    expect(_row(page, "carol", "right-code").locator(".reply")).to_have_text("Access-Accept")
    expect(_row(page, "rex", "refused").locator(".reply")).to_have_text("Access-Reject")
    sent = _row(page, "paula", "approved").locator(".delay-text")
    expect(sent).to_have_text(re.compile(r"delay 1\.00 s, sent after 1\.\d{3} s"))  # "sent" event
    journal = {e["seq"]: e for e in mock.control.journal()}
    seq = int(_row(page, "paula", "approved").get_attribute("data-seq"))
    shown = float(sent.inner_text().split("after ")[1].removesuffix(" s"))
    assert shown == pytest.approx(journal[seq]["sent"] - journal[seq]["time"], abs=0.001)
    assert page.locator("#timeline li.entry").count() == 4  # newest first
    assert page.locator("#timeline li.entry .user").first.inner_text() == "rex"
    expect(page.locator("#sessions tbody tr")).to_have_count(0)  # carol's exchange ended

    page.fill("#filters input[name=user]", "carol")
    page.click("#filters button[type=submit]")
    expect(page.locator("#timeline li.entry")).to_have_count(2)
    expect(page.locator("#timeline li.entry .user")).to_have_text(["carol", "carol"])
    page.fill("#filters input[name=outcome]", "matchd")  # a typo: the API's own message
    page.click("#filters button[type=submit]")
    expect(page.locator("#journal-error")).to_contain_text("outcome: no outcome 'matchd'")
    assert page.problems == [  # the 400 it showed, as the browser's console reports it
        "Failed to load resource: the server responded with a status of 400 (Bad Request)"
    ]
    page.problems.clear()


@pytest.mark.slow
def test_the_activate_button_changes_the_mock_and_the_screenshot_shows_it(
    page: Any, mock: MockRadius
) -> None:
    from playwright.sync_api import expect

    send(mock.address, build_request(SECRET, "paula", "push-secret"))  # a delayed entry
    challenge = send(mock.address, build_request(SECRET, "carol", "carol-pass")).reply()
    assert challenge is not None  # a live exchange, for the sessions table
    expect(page.locator("#sessions tbody tr")).to_have_count(1)
    expect(page.locator("#sessions tbody td").first).to_have_text("carol")
    assert mock.control.scenarios()["active"] is None
    page.click('li.scenario[data-name="reject"] button.activate')
    expect(page.locator("#active")).to_have_text("reject")
    assert mock.control.scenarios()["active"] == "reject"  # the page's POST passed the edge
    steps = page.locator('li.scenario[data-name="reject"] details[open] .step-line')
    expect(steps).to_have_count(1)
    expect(steps.first).to_contain_text("refused: Access-Reject")
    reply = send(mock.address, build_request(SECRET, "zed", "x")).reply()  # nobody lists zed
    assert reply is not None and reply.code == 3
    expect(_row(page, "zed", "refused")).to_have_count(1)

    image = Image.open(io.BytesIO(page.screenshot())).convert("RGB")
    assert image.size == (VIEWPORT["width"], VIEWPORT["height"])
    parts = ["h1", "#health", "#scenarios-panel", "#sessions-panel", "#journal-panel",
             "#timeline li.entry", 'li.scenario[data-name="reject"]', "#filters"]  # fmt: skip
    for selector in parts:
        box = page.locator(selector).first.bounding_box()
        assert box is not None, selector
        left, top = box["x"], box["y"]
        right, bottom = left + box["width"], top + box["height"]
        assert 0 <= left < right <= image.width and 0 <= top < bottom <= image.height, selector
        region = image.crop((int(left), int(top), int(right), int(bottom)))
        spread = ImageStat.Stat(region.convert("L")).stddev[0]
        assert spread > 5, f"{selector} is blank in the screenshot ({spread:.1f})"
    delay_bar = _row(page, "paula", "approved").locator(".bar").bounding_box()
    assert delay_bar is not None and delay_bar["width"] > 10  # a 1 s delay is drawn
    assert not _row(page, "zed", "refused").locator(".bar").is_visible()  # none at once
