"""The web demo in headless Chromium (Debian's chromium + Playwright): a recommendation, a like and the mood /
purpose picker."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

sync_api = pytest.importorskip(
    "playwright.sync_api", reason="playwright not installed (pip install playwright)"
)

from aigcrec.service.store import ServiceStore  # noqa: E402
from test_service_durability import start_server  # noqa: E402

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.mark.browser
@pytest.mark.slow
def test_round_trip_and_like(tmp_path):
    if not Path(CHROMIUM).is_file():
        pytest.skip("Debian's chromium is not installed (apt-get install -y chromium)")
    db = tmp_path / "browser.sqlite"
    proc, url = start_server(db, "--demo")  # demo mode: keyless writes from loopback
    try:
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            page = browser.new_page()
            page.goto(url + "/")
            page.wait_for_selector("#grid .card", timeout=20_000)
            page.fill("#user", "browser-user")
            page.fill("#mood", "I feel happy and want something bright")
            page.click("#recommend")
            sync_api.expect(page.locator("#emotion-label")).to_contain_text("joy", timeout=20_000)
            assert page.locator("#emotion-bars .row").count() == 7
            assert page.locator("#modality-bars .row").count() == 4
            cards = page.locator("#grid .card")
            assert cards.count() == 12
            liked = cards.first.get_attribute("data-item-id")
            cards.first.locator("button.like").click()
            # The like is sent, then the grid refreshes without the liked (now seen) item.
            page.wait_for_function(
                "id => ![...document.querySelectorAll('#grid .card')].some(c => c.dataset.itemId === id)",
                arg=liked,
                timeout=20_000,
            )
            sync_api.expect(page.locator("#status")).to_contain_text("personalised")
            # The mood / purpose picker: a stated state replaces what the text reads.
            page.select_option("#stated-emotion", "sadness")
            page.select_option("#stated-intent", "relax")
            sync_api.expect(page.locator("#signals-state")).to_contain_text("stated")
            page.click("#recommend")
            sync_api.expect(page.locator("#emotion-label")).to_contain_text("sadness", timeout=20_000)
            sync_api.expect(page.locator("#intent-label")).to_contain_text("relax")
            page.screenshot(path=str(tmp_path / "demo.png"), full_page=True)
            browser.close()
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    store = ServiceStore(db)
    events = [(e["user_id"], e["item_id"], e["type"]) for e in store.iter_events(origin="api")]
    store.close()
    assert ("browser-user", liked, "bookmark") in events
