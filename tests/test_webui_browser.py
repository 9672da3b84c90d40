"""The whole web app in Debian's Chromium (Playwright, sync API) against the real daemon.

One demo device (``breathe run --demo`` on a free port of 127.0.0.1, its own data dir with one
finished session in it) and one phone-sized browser with a real profile (so the app counts as
installable) serve the tests below, which run in file order like a person's first day: claim,
log in, start a session and watch it, stop and read the summary, survive the server going away,
make a custom pattern, go offline, change settings, export, delete everything.

Screenshots of the live view and the summary go to ``$BREATHE_TEST_ARTIFACTS`` (default: a
temporary directory, named in the test output).
"""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
import zipfile
from pathlib import Path

import pytest

from relay.procs import free_port

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]
BREATHE = Path(sys.executable).with_name("breathe")
NAME, PASSWORD = "Ada", "correct horse battery"
PHONE = {"width": 390, "height": 844}
# An EIP-55 address (from the EIP's own examples) and the same with one letter's case flipped.
WALLET = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
WALLET_TYPO = "0x5aaeb6053F3E94C9b9A09f33669435E7Ef1BeAed"

pytestmark = pytest.mark.skipif(not CHROMIUM.exists() or not BREATHE.exists(),
                                reason="needs /usr/bin/chromium (apt) and the breathe CLI")

def seed_finished_session(data_dir: Path) -> None:
    """One completed 90 s box-breathing session, made by the real engine on a fake clock."""
    from device.clock import FakeClock
    from device.session.engine import SessionEngine
    from device.session.live_state import ACTIVE
    from device.store import db_path_for

    clock = FakeClock(start=1000.0)
    engine = SessionEngine(db_path_for(data_dir), clock)
    engine.start("box", 1.5)
    while engine.status in ACTIVE:
        clock.advance(0.1)
        engine.step()
    engine.close()


class DemoDevice:
    """``breathe run --demo`` in a subprocess, stoppable and restartable on the same port."""

    def __init__(self, data_dir: Path, log: Path) -> None:
        self.data_dir, self.log = data_dir, log
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "BREATHE_DATA_DIR": str(data_dir),
                    "GPIOZERO_PIN_FACTORY": "mock", "GPIOZERO_MOCK_PIN_CLASS": "mockpwmpin"}
        self.env.pop("BREATHE_CONFIG", None)
        self.proc: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        return [str(BREATHE), "run", "--demo", "--no-sync", "--host", "127.0.0.1",
                "--port", str(self.port)]

    def start(self, timeout: float = 40.0) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(self.command(), env=self.env, stdout=out,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"breathe run exited {self.proc.returncode}:\n{self.tail()}")
            try:
                with urllib.request.urlopen(self.url + "/api/health", timeout=1) as reply:
                    if reply.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        raise AssertionError(f"breathe run did not answer in {timeout} s:\n{self.tail()}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGINT)  # what Ctrl-C does: the daemon shuts down cleanly
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)

    def __enter__(self) -> DemoDevice:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def claim_code(self) -> str:
        done = subprocess.run([str(BREATHE), "claim-code"], env=self.env, capture_output=True,
                              text=True, timeout=60, check=True)
        return re.search(r"[A-Z0-9]{4}-[A-Z0-9]{4}", done.stdout).group(0)

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory) -> Path:
    where = os.environ.get("BREATHE_TEST_ARTIFACTS")
    path = Path(where) if where else tmp_path_factory.mktemp("artifacts")
    path.mkdir(parents=True, exist_ok=True)
    print(f"browser test artifacts: {path}")
    return path


@pytest.fixture(scope="module")
def device(tmp_path_factory):
    root = tmp_path_factory.mktemp("device")
    data_dir = root / "data"
    seed_finished_session(data_dir)
    with DemoDevice(data_dir, root / "breathe-run.log") as dev:
        yield dev


@pytest.fixture(scope="module")
def context(device, tmp_path_factory):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        # A persistent profile: Chromium never offers to install from an incognito one.
        ctx = pw.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("profile")), executable_path=str(CHROMIUM),
            args=CHROMIUM_ARGS, viewport=PHONE, accept_downloads=True)
        ctx.set_default_timeout(15_000)
        try:
            yield ctx
        finally:
            ctx.close()


@pytest.fixture(scope="module")
def page(context, device):
    tab = context.pages[0] if context.pages else context.new_page()
    tab.on("dialog", lambda dialog: dialog.accept())
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    yield tab
    assert not errors, f"script errors in the pages: {errors}"


@pytest.fixture(scope="module")
def seen() -> dict[str, str]:
    """What earlier steps found out (the session id) for later ones."""
    return {}


def expect(page, selector: str, pattern: str, timeout: float = 15.0) -> str:
    """Wait until the text of ``selector`` matches ``pattern``; return it."""
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        node = page.query_selector(selector)
        text = node.inner_text() if node else ""
        if re.search(pattern, text):
            return text
        time.sleep(0.1)
    raise AssertionError(f"{selector}: {text!r} never matched {pattern!r}")


def log_in(page, device, password: str = PASSWORD, name: str = NAME) -> None:
    page.goto(device.url + "/login")
    page.fill("#name", name)
    page.fill("#password", password)
    page.click("main button[type=submit]")


# -- the flow -------------------------------------------------------------------------------------

def test_claim_the_device_then_log_in(page, device):
    page.goto(device.url + "/")
    assert page.url == device.url + "/claim"
    page.fill("#code", device.claim_code())
    page.fill("#display_name", NAME)
    page.fill("#password", PASSWORD)
    page.fill("#confirm", PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_url(device.url + "/")
    page.wait_for_selector("input[name=pattern]")

    page.click("header button")  # log out
    page.wait_for_url(re.compile(r"/login"))
    log_in(page, device, password="not the password")
    assert "do not match" in page.inner_text("main")
    log_in(page, device)
    page.wait_for_url(device.url + "/")
    assert page.get_attribute("nav a[aria-current=page]", "href") == "/"


def test_the_app_is_installable(page, context, device):
    page.goto(device.url + "/")
    state = page.evaluate("navigator.serviceWorker.ready.then(r => r.active.scriptURL)")
    assert state == device.url + "/sw.js"
    cdp = context.new_cdp_session(page)
    try:
        assert cdp.send("Page.getInstallabilityErrors")["installabilityErrors"] == []
        manifest = cdp.send("Page.getAppManifest")
        assert manifest["errors"] == [] and manifest["url"].endswith("/manifest.webmanifest")
    finally:
        cdp.detach()


def test_a_demo_session_runs_live_and_ends_in_a_summary(page, device, artifacts, seen):
    page.goto(device.url + "/")
    page.wait_for_selector(".pattern-option svg.shape polyline")
    shapes = page.query_selector_all(".pattern-option svg.shape polyline")
    assert len(shapes) >= 7  # every built-in drawn as its shape
    page.check("#pattern-box")
    page.select_option("#minutes", "1")
    page.click("#start")
    page.wait_for_url(device.url + "/live")
    expect(page, "#connection", r"^Live$")
    expect(page, "#pattern-name", "Box breathing")

    def snapshot() -> tuple[str, str, str]:
        return (page.inner_text("#time"), page.get_attribute("#orb", "style") or "",
                page.inner_text("#target-phase"))

    first = snapshot()
    time.sleep(1.5)
    second = snapshot()
    assert first[0] != second[0] and first[1] != second[1], (first, second)
    assert second[2] in ("Breathe in", "Hold", "Breathe out")
    assert re.fullmatch(r"\d+\.\d\s/min|—", page.inner_text("#rate"))
    assert page.inner_text("#announce").startswith("Guide:")  # the aria-live summary

    states = page.evaluate("""() => new Promise((done) => {
        const source = new EventSource("/api/live");
        let n = 0;
        source.addEventListener("state", () => n++);
        setTimeout(() => { source.close(); done(n); }, 2000);
    })""")
    assert states >= 18, f"{states} live states in 2 s (want 10 Hz)"

    page.click("#pause")
    expect(page, "#target-phase", "Paused")
    paused_at = page.inner_text("#time")
    time.sleep(1.0)
    assert page.inner_text("#time") == paused_at
    assert page.is_visible("#resume") and not page.is_visible("#pause")
    page.click("#resume")
    expect(page, "#target-phase", "Breathe|Hold")
    time.sleep(2.0)  # let the trace draw a few seconds
    page.screenshot(path=str(artifacts / "live.png"), full_page=True)

    page.click("#stop")
    page.wait_for_url(re.compile(r"/sessions/[^/]+$"))
    seen["session"] = page.url.rsplit("/", 1)[1]
    expect(page, "#overview", r"Box breathing .* Stopped")
    assert page.query_selector_all("#metrics div")
    assert page.inner_text("#insights").strip()
    assert page.query_selector("#breath-chart svg.chart path.series")
    page.screenshot(path=str(artifacts / "summary.png"), full_page=True)
    assert all((artifacts / name).stat().st_size > 10_000 for name in ("live.png", "summary.png"))


def test_live_view_says_reconnecting_and_recovers_when_the_server_restarts(page, device):
    page.goto(device.url + "/live")
    expect(page, "#connection", r"^Live$")
    device.stop()
    expect(page, "#connection", "Reconnecting", timeout=10)
    device.start()
    expect(page, "#connection", r"^Live$", timeout=20)
    expect(page, "main", "No session is running|Session finished")


def test_custom_patterns_are_validated_made_edited_and_deleted(page, device):
    page.goto(device.url + "/patterns")
    page.wait_for_selector("#pattern-list li[data-pattern]")
    page.fill("#name", "<b>Calm</b> 4-6")
    page.fill("#inhale", "0.5")
    page.click("#save")
    message = expect(page, "#inhale-error", r"\S")
    assert "1" in message and page.get_attribute("#inhale", "aria-invalid") == "true"
    assert page.evaluate("document.activeElement.id") == "inhale"

    page.fill("#inhale", "30")
    page.fill("#hold_in", "60")
    page.fill("#exhale", "30")
    page.fill("#hold_out", "1")
    page.click("#save")
    assert "120" in expect(page, "#cycle-error", r"\S")  # a rule about no single field
    assert page.get_attribute("#inhale", "aria-invalid") is None

    page.fill("#inhale", "4")
    page.fill("#hold_in", "0")
    page.fill("#exhale", "6")
    page.fill("#hold_out", "0")
    page.click("#save")
    expect(page, "#list-status", "Saved")
    item = page.wait_for_selector("#pattern-list li[data-pattern^=my-]")
    assert "<b>Calm</b> 4-6" in item.inner_text()  # shown as text...
    assert not item.query_selector("b")  # ...never as markup

    item.query_selector("button:text('Edit')").click()
    expect(page, "#form-heading", "Edit")
    page.fill("#exhale", "7")
    page.click("#save")
    expect(page, "#pattern-list li[data-pattern^=my-]", "4-0-7-0")

    page.goto(device.url + "/")
    page.wait_for_selector("input[name=pattern][value^=my-]")

    page.goto(device.url + "/patterns")
    page.wait_for_selector("#pattern-list li[data-pattern^=my-] button.danger").click()
    expect(page, "#list-status", "Deleted")
    assert not page.query_selector("#pattern-list li[data-pattern^=my-]")


def test_history_reads_offline_from_what_the_phone_saved(page, context, device, seen):
    page.goto(device.url + "/history")
    page.wait_for_selector("#sessions li a")
    assert len(page.query_selector_all("#sessions li a")) == 2  # the seeded one and ours
    expect(page, "#totals", r"Sessions\s+1")  # only the seeded one lasted a minute
    reason = expect(page, "#achievements", "First session")
    assert "Set a wallet address in Settings" in reason
    assert page.is_disabled("#achievements button")
    page.goto(f"{device.url}/sessions/{seen['session']}")
    expect(page, "#overview", "Box breathing")
    page.goto(device.url + "/history")
    page.wait_for_function("() => navigator.serviceWorker.controller !== null")

    context.set_offline(True)
    try:
        page.reload()
        expect(page, "#offline-banner", "Offline")
        assert len(page.query_selector_all("#sessions li a")) == 2
        page.click(f"#sessions a[href='/sessions/{seen['session']}']")
        expect(page, "#overview", "Box breathing")
        page.goto(device.url + "/sessions/never-opened")  # any summary: the one saved shell
        expect(page, "#load-error", r"\S")
    finally:
        context.set_offline(False)

    saved = page.evaluate("caches.open('breathe-api').then(c => c.keys())"
                          ".then(keys => keys.map(k => new URL(k.url).pathname))")
    assert "/api/history" in saved
    assert not [p for p in saved if p in ("/api/live", "/api/session", "/api/csrf")]


def test_settings_profile_privacy_status_and_export(page, device):
    page.goto(device.url + "/settings")
    expect(page, "#device-status", "Camera")
    assert page.input_value("#display_name") == NAME

    page.fill("#wallet_address", WALLET_TYPO)
    page.click("#profile-form button[type=submit]")
    assert "checksum" in expect(page, "#wallet_address-error", r"\S")
    page.fill("#wallet_address", WALLET)
    page.click("#profile-form button[type=submit]")
    expect(page, "#profile-status", "saved")

    page.check("input[name=retention][value='30d']")
    page.check("#share_metrics")
    page.click("#privacy-form button[type=submit]")
    expect(page, "#privacy-status", "saved")
    page.reload()
    page.wait_for_function(
        "() => document.querySelector('input[name=retention]:checked') !== null")
    assert page.is_checked("input[name=retention][value='30d']")
    assert page.is_checked("#share_metrics") and not page.is_checked("#allow_analytics")

    with page.expect_download() as download:
        page.click("#export-json")
    exported = json.loads(Path(download.value.path()).read_text())
    assert len(exported["sessions"]) == 2 and exported["profile"]["wallet_address"] == WALLET
    with page.expect_download() as download:
        page.click("#export-csv")
    with zipfile.ZipFile(io.BytesIO(Path(download.value.path()).read_bytes())) as archive:
        assert any(name.endswith(".csv") for name in archive.namelist())

    page.goto(device.url + "/history")
    reason = expect(page, "#achievements", "First session")
    assert "Sync is off" in reason and page.is_disabled("#achievements button")


# Relative luminance and contrast as WCAG 2 defines them, on the colours the browser computed
# (backgrounds composed up the tree). SVG text is checked by its fill.
_CONTRAST = """() => {
  const rgba = (s) => (s.match(/[\\d.]+/g) || [0, 0, 0, 0]).map(Number).concat([1]).slice(0, 4);
  const over = (top, under) => {
    const a = top[3];
    return [0, 1, 2].map((i) => top[i] * a + under[i] * (1 - a)).concat([1]);
  };
  const lum = (c) => {
    const [r, g, b] = c.slice(0, 3).map((v) => {
      v /= 255;
      return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const background = (el) => {
    const layers = [];
    for (let n = el; n && n.nodeType === 1; n = n.parentElement) {
      const c = rgba(getComputedStyle(n).backgroundColor);
      if (c[3] > 0) layers.push(c);
      if (c[3] >= 1) break;
    }
    return layers.reverse().reduce((acc, c) => over(c, acc), [255, 255, 255, 1]);
  };
  const bad = [];
  for (const el of document.querySelectorAll("body *")) {
    const own = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
    if (!own || !el.getClientRects().length) continue;
    const style = getComputedStyle(el);
    if (style.visibility === "hidden" || el.closest("[hidden], .visually-hidden, title")) continue;
    const fg = rgba(el instanceof SVGElement ? style.fill : style.color);
    const bg = background(el instanceof SVGElement ? el.closest("svg").parentElement : el);
    const [a, b] = [lum(over(fg, bg)), lum(bg)].sort((x, y) => y - x);
    const ratio = (a + 0.05) / (b + 0.05);
    const text = el.textContent.trim().slice(0, 30);
    if (ratio < 4.5) bad.push(`${el.tagName} "${text}" ${ratio.toFixed(2)}`);
  }
  return bad;
}"""

_UNLABELLED = """() => [...document.querySelectorAll("input, select, textarea")]
  .filter((el) => el.type !== "hidden" && !el.labels.length && !el.getAttribute("aria-label"))
  .map((el) => el.id || el.name)"""


def test_every_page_has_readable_contrast_and_labelled_controls(page, device, seen):
    for path in ("/", "/live", f"/sessions/{seen['session']}", "/history", "/patterns",
                 "/settings", "/login"):
        page.goto(device.url + path)
        page.wait_for_load_state("networkidle") if path != "/live" else time.sleep(1.0)
        assert page.evaluate(_CONTRAST) == [], path
        assert page.evaluate(_UNLABELLED) == [], path
        assert page.query_selector("main h1")
        if path == "/login":
            log_in(page, device)


def test_logging_out_forgets_saved_data_and_deleting_the_account_unclaims(page, device):
    page.goto(device.url + "/history")
    page.wait_for_selector("#sessions li a")
    page.click("header button")
    page.wait_for_url(re.compile(r"/login"))
    page.wait_for_function("() => caches.has('breathe-api').then((has) => !has)")
    log_in(page, device)
    page.wait_for_url(device.url + "/")

    page.goto(device.url + "/settings")
    page.fill("#delete-password", "not the password")
    page.click("#delete-form button")
    assert "not the owner's password" in expect(page, "#delete-password-error", r"\S")
    page.fill("#delete-password", PASSWORD)
    page.click("#delete-form button")
    page.wait_for_url(device.url + "/claim")
    assert page.evaluate("caches.keys()") == []
    answer = page.request.get(device.url + "/api/history")
    assert answer.status == 401 and answer.json()["error"] == "unclaimed"
    assert device.claim_code()  # a new owner can claim it again

