"""Shared pytest configuration: the one Playwright browser every browser test uses.

Playwright's sync API runs an event loop in the test thread while it is open, so a second
`sync_playwright()` in the same session fails: browser tests share this session-scoped one.
"""

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

BROWSER = os.environ.get("TUNELAB_BROWSER", "/usr/bin/chromium")
BROWSER_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    """Debian's chromium (never a downloaded browser); skips when it is not installed."""
    if not Path(BROWSER).exists():
        pytest.skip(f"no chromium at {BROWSER}: install Debian's chromium or set TUNELAB_BROWSER")
    # Playwright's sync API keeps an event loop in this thread; Django's ORM calls from test
    # bodies would otherwise refuse to run "in an async context".
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=BROWSER, args=BROWSER_ARGS)
        yield launched
        launched.close()
