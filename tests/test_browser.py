"""A person's first query, in a real browser: Debian's Chromium driven by Playwright."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
CHROMIUM = "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else (shutil.which("chromium") or "")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SCREENSHOT_DIR = Path(__file__).resolve().parents[1] / "screenshots"


def save_screenshot(page, name: str) -> Path:
    """A full-page screenshot in screenshots/ (committed, so a change in looks shows up in review)."""
    SCREENSHOT_DIR.mkdir(exist_ok=True)
    shot = SCREENSHOT_DIR / name
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    return shot


@pytest.mark.skipif(not CHROMIUM,
                    reason="Debian's chromium is not installed (apt-get install chromium); .ci/run installs it")
def test_text_to_image_query_by_typing_and_clicking(running_app, tmp_path):
    from playwright.sync_api import sync_playwright

    client, resources = running_app
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1400})
            page.goto(client.src, wait_until="networkidle", timeout=60_000)
            page.get_by_role("tab", name="Text → Image").click()  # Compose is the tab a page opens on
            box = page.locator("#text-to-image-input textarea")
            box.click()
            box.type("two red robots on a striped background", delay=5)
            page.locator("#text-to-image-button").click()
            images = page.locator("#text-to-image-gallery img")
            images.first.wait_for(state="visible", timeout=60_000)
            page.wait_for_function(
                "() => [...document.querySelectorAll('#text-to-image-gallery img')].some(i => i.naturalWidth > 0)",
                timeout=30_000,
            )
            assert images.count() >= 1
            save_screenshot(page, "text_to_image.png")
        finally:
            browser.close()
