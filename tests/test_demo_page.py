"""The demo page (GET /): served only where it should be, with headers that keep it to this
origin; and, in headless Chromium against a real demo server (with its mock RADIUS server), it
walks the login flow as a client of the API: alice's QR code read from a screenshot and her
code accepted, carol's challenge, paula's push, pete's denial."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import zxingcpp
from PIL import Image

from appgate_mfa_server.app import create_app
from appgate_mfa_server.config import demo_settings
from tests.conftest import ACCEPT, base_config, mfa_server, serve_in_thread, settings_from, totp_now

BROWSER_ACCEPT = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
TIMEOUT_MS = 20_000  # a push waits 2 s for the mock; generous for a loaded machine


def _serve(config: dict[str, Any], folder: Path) -> Iterator[str]:
    url, server, thread = serve_in_thread(create_app(settings_from(config, folder)))
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture
def configured(tmp_path: Path) -> Iterator[str]:
    """A server with a configuration that says nothing of the page."""
    yield from _serve(base_config(tmp_path), tmp_path)


@pytest.fixture(params=["demoPage", "testControl"])
def with_page(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    config = base_config(tmp_path)
    config["server"][request.param] = True
    yield from _serve(config, tmp_path)


def test_off_by_default_in_a_configured_server(configured: str) -> None:
    assert httpx.get(configured + "/", headers=BROWSER_ACCEPT).status_code == 406
    assert httpx.get(configured + "/", headers=ACCEPT).json()["id"] == "not found"
    assert httpx.get(configured + "/demo.js", headers=ACCEPT).status_code == 404


def test_the_embedded_demo_turns_it_on(tmp_path: Path) -> None:
    assert demo_settings(tmp_path).server.demo_page


def test_served_with_the_switch_or_under_test_control(with_page: str) -> None:
    page = httpx.get(with_page + "/", headers=BROWSER_ACCEPT)
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    policy = page.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "script-src 'self'" in policy
    assert "img-src 'self' data:" in policy and "frame-ancestors 'none'" in policy
    assert page.headers["x-content-type-options"] == "nosniff"
    assert '<script src="/demo.js" defer></script>' in page.text
    assert "http" not in page.text.replace("http-equiv", "")  # nothing from another site
    script = httpx.get(with_page + "/demo.js")
    assert script.headers["content-type"] == "text/javascript; charset=utf-8"
    assert 'const ACCEPT = "application/vnd.appgate.peer-v22+json"' in script.text
    assert httpx.get(with_page + "/demo.css").headers["content-type"] == "text/css; charset=utf-8"
    head = httpx.head(with_page + "/")
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == str(len(page.content))
    posted = httpx.post(with_page + "/", headers=ACCEPT)  # not the page: the API's answer
    assert posted.status_code == 404 and posted.json()["id"] == "not found"


# In the browser, against the real demo: `mfa-server` with no configuration, its mock included.


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("demo")
    with mfa_server(["--data-dir", str(folder)], cwd=folder) as (url, _process, ready):
        assert "mockRadius" in ready
        yield url


@pytest.fixture
def page(browser: Any, demo: str) -> Iterator[Any]:
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(demo + "/")
    page.wait_for_selector("#provider option[value=local]", state="attached")
    try:
        yield page
    finally:
        context.close()


def _sign_in(page: Any, provider: str, user: str) -> None:
    page.select_option("#provider", provider)
    page.fill("#username", user)
    page.fill("#password", f"{user}-pass")
    page.click("#sign-in")


def _signed_in_as(page: Any) -> str:
    page.wait_for_selector("#done", state="visible")
    assert page.is_hidden("#error")
    user: str = page.text_content("[data-claim=user]")
    assert page.text_content("[data-claim='MFA owed']") == "false"
    return user


@pytest.mark.slow
def test_alice_scans_the_qr_code_from_the_screen_and_her_code_is_accepted(page: Any) -> None:
    assert page.text_content("#banner") == "Demo reference server. Authorized use only."
    _sign_in(page, "local", "alice")
    page.wait_for_selector("#qr", state="visible")
    page.wait_for_function("document.getElementById('qr').naturalWidth > 0")
    screenshot = Image.open(io.BytesIO(page.screenshot(full_page=True)))
    (found,) = zxingcpp.read_barcodes(screenshot)  # from the pixels on the screen
    assert found.format == zxingcpp.BarcodeFormat.QRCode
    otpauth = urlsplit(found.text)
    assert (otpauth.scheme, otpauth.netloc, otpauth.path) == (
        "otpauth",
        "totp",
        "/alice@local@localhost",
    )
    (secret,) = parse_qs(otpauth.query)["secret"]
    assert page.text_content("#secret-text") == secret
    assert page.text_content("#otp-prompt") == "Then type the code the app shows"
    page.fill("#code", totp_now(secret, time.time()))
    page.click("#verify")
    assert _signed_in_as(page) == "alice"


@pytest.mark.slow
def test_carol_answers_the_challenge_she_is_shown(page: Any) -> None:
    _sign_in(page, "radius-challenge", "carol")
    page.wait_for_selector("#otp", state="visible")
    assert page.text_content("#otp-prompt") == "Enter the code shown on your token"
    assert page.is_hidden("#secret") and page.is_hidden("#login")
    page.fill("#code", "123456")
    page.click("#verify")
    assert _signed_in_as(page) == "carol"


@pytest.mark.slow
def test_paula_waits_on_a_spinner_for_her_push(page: Any) -> None:
    _sign_in(page, "radius-push", "paula")
    page.wait_for_selector("#spinner", state="visible")  # the mock approves after 2 s
    assert page.is_hidden("#otp")
    assert _signed_in_as(page) == "paula"
    page.click("#logout")
    page.wait_for_selector("#login", state="visible")


@pytest.mark.slow
def test_pete_is_told_his_push_was_denied(page: Any) -> None:
    _sign_in(page, "radius-push", "pete")
    page.wait_for_selector("#error", state="visible")
    assert page.text_content("#error").startswith("401 authentication failed: ")
    page.click("#restart")
    page.wait_for_selector("#login", state="visible")
    assert page.is_hidden("#error")
