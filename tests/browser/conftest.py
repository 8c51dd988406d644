"""A real headless Chromium (Debian's) for the inbox page, and where its screenshots go."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.conftest import require_service

CHROMIUM = os.environ.get("LMS_BRIDGE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# The tests save the page's main states here, as the run's artefacts.
SCREENSHOTS = Path(os.environ.get("LMS_BRIDGE_SCREENSHOTS", "test-artifacts/screenshots"))


@pytest.fixture
async def browser() -> AsyncIterator[object]:
    """A fresh headless Chromium."""
    require_service(shutil.which(CHROMIUM) is not None, f"Chromium is not installed at {CHROMIUM}")
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        instance = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield instance
        finally:
            await instance.close()


def screenshot_path(name: str) -> Path:
    """Where a screenshot of the page's state `name` is saved."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS / f"{name}.png"
