"""Headless Chromium for the tests of the browser pages (the demo page, the mock's live view).

Debian's chromium (installed by .ci/run) driven by Playwright's Python client: Playwright's own
browser download is not used, so the suite needs nothing from outside the package registries.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest

CHROMIUM_ARGS = [
    "--no-sandbox",  # CI runs as root
    "--disable-gpu",
    "--no-first-run",
    # no calls home: the machines that run the suite have no Internet, and each refused
    # connection costs time
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
]


def chromium_path() -> str:
    found = os.environ.get("MFA_TEST_CHROMIUM") or shutil.which("chromium")
    if not found:
        pytest.fail(
            "the browser tests need Chromium: `apt-get install chromium` (bash .ci/run does), "
            "or MFA_TEST_CHROMIUM=/path/to/chromium"
        )
    return found


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """One headless Chromium per test module; each test opens its own context (no shared
    cookies or storage). Not one for the session: while Playwright's sync API is started it
    keeps an asyncio event loop running in the main thread, and every later test calling
    asyncio.run() would fail. Typed as object so modules that do not use it need no Playwright."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=chromium_path(), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield chromium
        finally:
            chromium.close()
