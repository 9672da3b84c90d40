"""Every page on a phone: Playwright's mobile emulation (touch, device scale factor, the
viewport meta applied) at 360×740 and 390×844 against the real demo daemon, with long stored
names. One daemon and one browser serve the whole module; the pages are read, not clicked
through, except the live view's controls.
"""

from __future__ import annotations

import re
import time

import pytest
from test_webui_browser import (
    CHROMIUM,
    CHROMIUM_ARGS,
    PASSWORD,
    DemoDevice,
    log_in,
    pytestmark,  # noqa: F401  (skipped without chromium and the CLI)
    seed_finished_session,
)

PHONES = {
    "360x740": {"viewport": {"width": 360, "height": 740}, "device_scale_factor": 3},
    "390x844": {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 3},
}
LONG_NAME = "WwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwW"  # 50 characters, no space
PAGES = ["/", "/history", "/patterns", "/catalog", "/settings", "/account", "/live", "/trust",
         "/recover", "/no/such/page"]

# Whatever sticks out to the right of the viewport, named, so a failure says what to fix.
OVERFLOW = """() => {
  const width = document.documentElement.clientWidth;
  const wide = [];
  for (const el of document.querySelectorAll("body *")) {
    const box = el.getBoundingClientRect();
    if (box.width && box.right > width + 1) {
      const name = `${el.tagName.toLowerCase()}#${el.id}.${el.className}`;
      wide.push(`${name} right=${Math.round(box.right)}`);
    }
  }
  return {scroll: document.documentElement.scrollWidth, width, wide: wide.slice(0, 5)};
}"""


@pytest.fixture(scope="module")
def device(tmp_path_factory):
    from webui_api_support import stored_session

    from device.store import db_path_for, open_db
    from device.store.owner_codes import claim_code
    from webui.security import claim

    root = tmp_path_factory.mktemp("mobile")
    data_dir = root / "data"
    seed_finished_session(data_dir)
    db = open_db(db_path_for(data_dir))
    try:
        claim(db, claim_code(data_dir), LONG_NAME, PASSWORD)
        stored_session(db, adherence=1.0)  # a perfect week: the adherence axis reads 100 %
    finally:
        db.close()
    with DemoDevice(data_dir, root / "breathe-run.log") as dev:
        yield dev


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module", params=list(PHONES))
def phone(request, browser, device):
    context = browser.new_context(is_mobile=True, has_touch=True, **PHONES[request.param])
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.dialogs = []  # what the page asked, in order; every question is answered "cancel"
    page.on("dialog", lambda dialog: (page.dialogs.append(dialog.message), dialog.dismiss()))
    log_in(page, device, name=LONG_NAME)
    page.wait_for_url(device.url + "/")
    if request.param == "360x740":  # the first phone stores the long pattern name
        token = page.evaluate("fetch('/api/csrf').then(r => r.json()).then(j => j.csrf_token)")
        made = page.request.post(device.url + "/api/patterns", headers={"X-CSRFToken": token},
                                 data={"name": LONG_NAME, "inhale": 4, "exhale": 6})
        assert made.status == 201, made.text()
    try:
        yield page
    finally:
        context.close()


def settle(page) -> None:
    page.wait_for_load_state("networkidle")


def test_no_page_is_wider_than_the_phone(phone, device):
    seen = {}
    for path in PAGES + ["/sessions/" + first_session(phone, device)]:
        phone.goto(device.url + path)
        settle(phone)
        found = phone.evaluate(OVERFLOW)
        seen[path] = found
    wide = {path: f for path, f in seen.items() if f["scroll"] > f["width"] or f["wide"]}
    assert not wide, wide
    phone.goto(device.url + "/")
    settle(phone)
    assert LONG_NAME in phone.inner_text("main")  # the long name is there, wrapped


def first_session(page, device) -> str:
    sessions = page.request.get(device.url + "/api/sessions").json()["sessions"]
    return sessions[0]["id"]


def test_start_is_on_the_first_screen_of_home(phone, device):
    phone.goto(device.url + "/")
    settle(phone)
    assert in_view(phone, "#start"), "Start is below the fold"


def in_view(page, selector: str) -> bool:
    return page.evaluate("""(sel) => {
      const box = document.querySelector(sel).getBoundingClientRect();
      return box.width > 0 && box.top >= 0 && box.bottom <= window.innerHeight;
    }""", selector)


def test_live_view_shows_guide_phase_and_controls_without_scrolling(phone, device):
    phone.goto(device.url + "/")
    settle(phone)
    phone.check("#pattern-box")
    phone.select_option("#minutes", "2")
    phone.tap("#start")
    phone.wait_for_url(device.url + "/live")
    phone.wait_for_selector("#pause:visible")
    for selector in ("#orb", "#words", "#target-phase", "#pause", "#stop"):
        assert in_view(phone, selector), f"{selector} is not on the first screen"
    running = phone.evaluate(OVERFLOW)
    assert running["scroll"] <= running["width"] and not running["wide"], running
    phone.focus("#pause")
    phone.keyboard.press("Enter")
    phone.wait_for_selector("#resume:visible")
    phone.wait_for_function("() => document.activeElement.id === 'resume'")  # not the page top
    phone.keyboard.press("Enter")
    phone.wait_for_selector("#pause:visible")
    phone.wait_for_function("() => document.activeElement.id === 'pause'")
    phone.tap("#stop")
    phone.wait_for_url(re.compile(r"/sessions/[^/]+$"))
    time.sleep(0.2)


def test_home_offers_the_last_pattern_and_duration_again(phone, device):
    phone.goto(device.url + "/")
    phone.wait_for_selector("#pattern-box")
    settle(phone)
    assert phone.is_checked("#pattern-box")
    assert phone.input_value("#minutes") == "2"


def test_a_crash_mid_session_dims_the_guide_then_says_the_session_was_kept(phone, device):
    phone.goto(device.url + "/")
    phone.wait_for_selector("#pattern-box")
    phone.tap("#start")
    phone.wait_for_url(device.url + "/live")
    phone.wait_for_selector("#pause:visible")
    device.proc.kill()  # a crash mid-session: no last word from the daemon
    device.proc.wait(timeout=10)
    phone.wait_for_selector("#guide.stale")
    assert phone.evaluate("getComputedStyle(document.getElementById('orb')).opacity") < "1"
    device.start()
    phone.wait_for_selector("#finished:visible", timeout=30_000)
    assert "kept as interrupted" in phone.inner_text("#finished-text")
    assert "/sessions/" in phone.get_attribute("#summary-link", "href")


def test_chart_labels_are_whole(phone, device):
    """Every axis label lies inside its chart (a cut "100 %" used to read "00 %")."""
    phone.goto(device.url + "/history")
    phone.wait_for_selector("#weeks-adherence svg.chart text")
    cut = phone.evaluate("""() => [...document.querySelectorAll("svg.chart")].flatMap((chart) => {
      const box = chart.getBoundingClientRect();
      return [...chart.querySelectorAll("text")].filter((t) => {
        const r = t.getBoundingClientRect();
        return r.left < box.left - 0.5 || r.right > box.right + 0.5;
      }).map((t) => t.textContent);
    })""")
    assert not cut, cut
    labels = phone.evaluate(
        "[...document.querySelectorAll('#weeks-adherence text')].map(t => t.textContent)")
    assert "100 %" in labels


def test_with_sync_off_the_catalog_offers_no_search_or_share(phone, device):
    phone.goto(device.url + "/catalog")
    phone.wait_for_selector("#sync-off:visible")
    assert "Sync is turned off" in phone.inner_text("#sync-off")
    assert phone.is_disabled("#catalog-search button[type=submit]")
    assert phone.is_disabled("#text")
    phone.wait_for_selector("#share-list li")
    shares = phone.query_selector_all("#share-list button")
    assert shares and all(button.is_disabled() for button in shares)


def test_settings_on_a_phone_say_only_what_is_true_now(phone, device):
    phone.goto(device.url + "/settings")
    phone.wait_for_selector("#device-status div")
    status = phone.inner_text("#device-status")
    assert "Off: nothing leaves this device" in status and "Waiting to sync" not in status

    phone.fill("#wallet_address", "")
    phone.click("#profile-form button[type=submit]")
    phone.wait_for_selector("#profile-status:has-text('Profile saved.')")
    phone.fill("#wallet_address", "0x" + "0" * 40)
    phone.click("#profile-form button[type=submit]")
    phone.wait_for_selector("#wallet_address-error:visible")
    assert "belongs to nobody" in phone.inner_text("#wallet_address-error")
    assert phone.inner_text("#profile-status") == ""  # no stale "saved" beside the error

    asked = len(phone.dialogs)
    phone.fill("#delete-password", "not the password")
    phone.click("#delete-form button[type=submit]")
    phone.wait_for_selector("#delete-password-error:visible")
    assert len(phone.dialogs) == asked  # a wrong password is said first, nothing asked
    phone.fill("#delete-password", PASSWORD)
    phone.click("#delete-form button[type=submit]")
    deadline = time.monotonic() + 10
    while len(phone.dialogs) == asked and time.monotonic() < deadline:
        phone.wait_for_timeout(100)  # (Playwright handles the dialog while it waits)
    assert len(phone.dialogs) > asked, phone.inner_text("#delete-form")
    assert "cannot be undone" in phone.dialogs[-1]  # asked only now, and answered "cancel"
    assert phone.request.get(device.url + "/api/profile").status == 200  # nothing deleted


def test_a_10000_character_name_is_refused_in_words(phone, device):
    phone.goto(device.url + "/patterns")
    phone.wait_for_selector("#pattern-list li[data-pattern]")
    phone.fill("#name", "x" * 10_000)
    phone.click("#save")
    phone.wait_for_selector("#name-error:visible")
    said = phone.inner_text("#name-error")
    assert "at most 50 characters" in said and "10000" in said
    assert len(phone.input_value("#name")) == 10_000  # nothing cut behind the person's back
