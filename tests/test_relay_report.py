"""``breathe relay report``: the fleet's numbers equal what the stored sessions say, only
consenting devices count (and a retraction takes a device's sessions back out), ``--since``
picks whole UTC days, and the html report reads offline in Chromium with its charts drawn.

Expected numbers are worked out here from the messages sent, never from the relay's code.
"""

from __future__ import annotations

import json
import os
import random
import statistics
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from relay_support import NoMinter, sim_device, write_relay_config

from device.cli import main
from relay.report import build_report, consenting_sessions, format_table
from relay.report_html import render_html
from relay.store import open_store, timestamp
from relay.store.catalog import retract_device
from relay.validate import Inbound, check
from wire import protocol
from wire.metrics import SessionMetrics
from wire.patterns import BUILT_INS, Pattern
from wire.protocol import Retraction, SessionMessage, Status, Telemetry

NOW = datetime(2025, 3, 10, 15, 0, tzinfo=UTC)
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]
# Custom patterns: the names their owners gave them must never reach the report.
CALM = Pattern(name="Grandma's calm", inhale=5, exhale=7)
CALM_COPY = Pattern(name="Sofa <b>evening</b>", inhale=5, exhale=7)  # same phases, other name
SECRET = Pattern(name="Secret name", inhale=3, hold_in=1.5, exhale=6, hold_out=0.5)
CUSTOM = {"custom-grandmas-calm": ("custom:5-0-7-0", CALM),
          "custom-sofa-evening": ("custom:5-0-7-0", CALM_COPY),
          "custom-secret-name": ("custom:3-1.5-6-0.5", SECRET)}
PRIVATE = ("Grandma", "Sofa", "Secret name", "custom-", "bedroom")


def session(device: str, *, started: datetime, pattern_id: str = "box",
            status: str = "completed", adherence: float | None = 0.8, analytics: bool = True,
            minutes: float = 5.0) -> SessionMessage:
    pattern = CUSTOM[pattern_id][1] if pattern_id in CUSTOM else BUILT_INS[pattern_id]
    return SessionMessage(
        id=uuid.uuid4().hex, device_id=device, pattern_id=pattern_id, pattern=pattern,
        started=started, ended=started + timedelta(minutes=minutes), status=status,
        duration_s=minutes * 60, analytics=analytics,
        metrics=SessionMetrics(duration_s=minutes * 60, adherence=adherence))


def telemetry(device: str, *, analytics: bool = True, fps: float | None = 15.0,
              inference_ms: float | None = 12.0, outbox_depth: int = 0,
              oldest_unsent_s: float | None = None) -> Telemetry:
    return Telemetry(id=uuid.uuid4().hex, device_id=device, at=NOW, uptime_s=60.0, fps=fps,
                     inference_ms=inference_ms, outbox_depth=outbox_depth,
                     oldest_unsent_s=oldest_unsent_s, analytics=analytics)


KINDS = {SessionMessage: protocol.SESSIONS, Telemetry: protocol.TELEMETRY,
         Status: protocol.STATUS, Retraction: protocol.RETRACT}


def put(store, messages, received: datetime) -> None:
    """Store messages as the relay's consumer would, received at ``received``."""
    items = []
    for message in messages:
        item = check(protocol.topic(message.device_id, KINDS[type(message)]), message.encode())
        assert isinstance(item, Inbound), item
        items.append(item)
    store.record(items, Counter(), timestamp(received))


@pytest.fixture
def store(tmp_path):
    s = open_store(str(tmp_path / "relay.db"))
    yield s
    s.close()


def day(n: int, hour: int = 8) -> datetime:
    """``n`` days before NOW's day, at ``hour`` UTC."""
    return datetime.combine(NOW.date() - timedelta(days=n), datetime.min.time(), UTC).replace(
        hour=hour)


# --- numbers --------------------------------------------------------------------------------

def test_a_small_fleet_gives_the_numbers_worked_out_by_hand(store):
    kitchen = [session("kitchen", started=day(0, 7), adherence=0.9),
               session("kitchen", started=day(0, 14), status="stopped", adherence=0.5),
               session("kitchen", started=day(1), adherence=0.7),
               session("kitchen", started=day(2), pattern_id="custom-grandmas-calm",
                       adherence=None, minutes=10),
               session("kitchen", started=day(3), pattern_id="sleep", status="interrupted",
                       adherence=0.6)]
    bedroom = [session("bedroom", started=day(0), adherence=0.1, analytics=False)
               for _ in range(3)]
    bedroom.append(session("bedroom", started=day(1), pattern_id="custom-secret-name",
                           analytics=False))
    put(store, kitchen + bedroom, NOW)

    report = build_report(store, 7, now=NOW).to_dict()

    assert report["sessions"] == {"total": 5, "completed": 3, "stopped": 1, "interrupted": 1,
                                  "completion_rate": 0.6, "devices": 1, "minutes": 30.0}
    assert (report["first_day"], report["last_day"]) == ("2025-03-04", "2025-03-10")
    assert [(d["day"], d["sessions"], d["completed"]) for d in report["per_day"]] == [
        ("2025-03-04", 0, 0), ("2025-03-05", 0, 0), ("2025-03-06", 0, 0),
        ("2025-03-07", 1, 0), ("2025-03-08", 1, 1), ("2025-03-09", 1, 1),
        ("2025-03-10", 2, 1)]
    assert [(p["pattern"], p["label"], p["sessions"], p["completed"], p["median_adherence"])
            for p in report["patterns"]] == [
        ("box", "Box breathing", 3, 2, 0.7),
        ("custom:5-0-7-0", "custom 5-0-7-0 s", 1, 1, None),
        ("sleep", "Sleep", 1, 0, 0.6)]
    text = json.dumps(report) + format_table(build_report(store, 7, now=NOW))
    for private in PRIVATE:
        assert private not in text


def _expected(messages: list[SessionMessage], days: int) -> dict:
    """The report's numbers, straight from the messages."""
    first = NOW.date() - timedelta(days=days - 1)
    counted = [m for m in messages
               if m.analytics and first <= m.started.astimezone(UTC).date() <= NOW.date()]
    per_day = Counter(m.started.date().isoformat() for m in counted)
    done_per_day = Counter(m.started.date().isoformat() for m in counted
                           if m.status == "completed")
    patterns: dict[str, list[SessionMessage]] = {}
    for m in counted:
        key = CUSTOM[m.pattern_id][0] if m.pattern_id in CUSTOM else m.pattern_id
        patterns.setdefault(key, []).append(m)
    completed = sum(m.status == "completed" for m in counted)
    return {
        "total": len(counted), "completed": completed,
        "rate": round(completed / len(counted), 4) if counted else None,
        "devices": len({m.device_id for m in counted}),
        "per_day": {(first + timedelta(days=i)).isoformat(): (
            per_day[(first + timedelta(days=i)).isoformat()],
            done_per_day[(first + timedelta(days=i)).isoformat()]) for i in range(days)},
        "patterns": {key: (len(group), sum(m.status == "completed" for m in group),
                           round(statistics.median(scores), 4) if (scores := [
                               m.metrics.adherence for m in group
                               if m.metrics.adherence is not None]) else None)
                     for key, group in patterns.items()},
    }


def random_fleet(store, seed: int = 20250310) -> list[SessionMessage]:
    """160 sessions over 40 days from four devices (one never consents, one sometimes),
    stored as they arrive: most minutes after they end, some days late from an outbox."""
    rng = random.Random(seed)
    consent = {"kitchen": 1.0, "hall": 1.0, "office": 0.5, "bedroom": 0.0}
    patterns = ["box", "sleep", "relaxation", "coherent", *CUSTOM]
    messages = []
    for _ in range(160):
        device = rng.choice(list(consent))
        started = NOW - timedelta(days=rng.uniform(0, 40))
        messages.append(session(
            device, started=started, pattern_id=rng.choice(patterns),
            status=rng.choices(["completed", "stopped", "interrupted"], [6, 3, 1])[0],
            adherence=None if rng.random() < 0.1 else round(rng.uniform(0.2, 0.99), 4),
            analytics=rng.random() < consent[device], minutes=rng.choice([1, 2.5, 5, 10])))
    for m in messages:
        late = timedelta(days=rng.choice([0, 0, 0, 3]), minutes=12)
        put(store, [m], min(m.ended + late, NOW))
    assert any(m.analytics for m in messages) and not all(m.analytics for m in messages)
    return messages


def test_a_random_fleet_matches_its_stored_sessions_for_every_window(store):
    messages = random_fleet(store)
    for days in (1, 7, 30):
        report = build_report(store, days, now=NOW).to_dict()
        want = _expected(messages, days)
        s = report["sessions"]
        assert (s["total"], s["completed"], s["completion_rate"], s["devices"]) == (
            want["total"], want["completed"], want["rate"], want["devices"]), days
        assert {d["day"]: (d["sessions"], d["completed"]) for d in report["per_day"]} == \
            want["per_day"]
        got = {p["pattern"]: (p["sessions"], p["completed"], p["median_adherence"])
               for p in report["patterns"]}
        assert got == want["patterns"]
        counts = [p["sessions"] for p in report["patterns"]]
        assert counts == sorted(counts, reverse=True)  # most popular first
    assert "bedroom" not in json.dumps(build_report(store, 60, now=NOW).to_dict())


def test_postgresql_gives_the_same_report_as_sqlite(store):
    from relay.store.localpg import LocalPostgres, available

    reason = available()
    if reason:
        pytest.skip(f"needs a local PostgreSQL: {reason}")
    random_fleet(store)
    retract_device(store, "office", now=timestamp(NOW - timedelta(days=5)))
    with LocalPostgres() as pg:
        other = open_store(pg.url)
        try:
            random_fleet(other)
            retract_device(other, "office", now=timestamp(NOW - timedelta(days=5)))
            for days in (7, 30):
                want = build_report(store, days, now=NOW).to_dict()
                assert want["sessions"]["total"] > 0
                assert build_report(other, days, now=NOW).to_dict() == want
        finally:
            other.close()


def test_since_counts_whole_utc_days_by_when_a_session_started(store):
    put(store, [session("kitchen", started=day(0, 0)),  # today, just after midnight UTC
                session("kitchen", started=day(6, 0)),  # first day of a 7-day window
                session("kitchen", started=day(7, 23))],  # the day before it
        NOW)  # all delivered now: a late delivery counts on the day the session started
    totals = {days: build_report(store, days, now=NOW).sessions["total"]
              for days in (1, 6, 7, 8)}
    assert totals == {1: 1, 6: 1, 7: 2, 8: 3}
    assert sorted(s.started for s in consenting_sessions(store, 7, NOW)) == [day(6, 0), day(0, 0)]
    assert len(build_report(store, 8, now=NOW).per_day) == 8


def test_a_retracted_device_leaves_the_report_until_a_new_owner_consents(store):
    put(store, [session("kitchen", started=day(1)), session("hall", started=day(1))],
        NOW - timedelta(hours=3))
    put(store, [telemetry("kitchen"), telemetry("hall")], NOW - timedelta(minutes=5))
    put(store, [Retraction(id="r1", device_id="kitchen")], NOW - timedelta(hours=2))
    report = build_report(store, 7, now=NOW)
    assert report.sessions["total"] == 1 and report.sessions["devices"] == 1
    assert [d["device"] for d in report.health["rows"]] == ["hall"]

    put(store, [session("kitchen", started=day(0, 14))], NOW - timedelta(minutes=30))
    assert build_report(store, 7, now=NOW).sessions["total"] == 2  # after the tombstone
    retract_device(store, "kitchen", now=timestamp(NOW - timedelta(minutes=1)))
    assert build_report(store, 7, now=NOW).sessions["total"] == 1


def test_device_health_comes_from_consenting_devices_latest_telemetry(store):
    put(store, [telemetry("kitchen", fps=14.5, inference_ms=12.0, outbox_depth=3,
                          oldest_unsent_s=40.0),
                telemetry("porch", fps=15.0, inference_ms=10.0),
                telemetry("bedroom", analytics=False, fps=1.0, inference_ms=99.0,
                          outbox_depth=500)],
        NOW - timedelta(minutes=1))
    put(store, [Status(id="s1", device_id="porch", state="offline")], NOW - timedelta(seconds=5))
    put(store, [telemetry("hall", fps=9.0, inference_ms=20.0)], NOW - timedelta(minutes=30))

    health = build_report(store, 7, now=NOW, offline_after_min=15).health
    rows = {d["device"]: d for d in health["rows"]}
    assert sorted(rows) == ["hall", "kitchen", "porch"]
    assert {name: row["offline"] for name, row in rows.items()} == {
        "hall": True, "kitchen": False, "porch": True}  # silent 30 min; the broker's will
    assert rows["hall"]["last_seen_s"] == 1800.0
    assert (rows["kitchen"]["outbox_depth"], rows["kitchen"]["oldest_unsent_s"]) == (3, 40.0)
    assert {k: health[k] for k in ("devices", "offline", "median_fps", "median_inference_ms",
                                   "max_outbox_depth", "max_oldest_unsent_s")} == {
        "devices": 3, "offline": 2, "median_fps": 14.5, "median_inference_ms": 12.0,
        "max_outbox_depth": 3, "max_oldest_unsent_s": 40.0}
    assert build_report(store, 7, now=NOW, offline_after_min=60).health["offline"] == 1


# --- the command and its formats --------------------------------------------------------------

@pytest.fixture
def config_file(tmp_path, clean_env):
    path = tmp_path / "breathe.toml"
    path.write_text(f'[relay]\nstore_url = "{tmp_path / "relay.db"}"\n')
    return path


def run_report(config_file: Path, *args: str):
    result = CliRunner().invoke(main, ["--config", str(config_file), "relay", "report", *args],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


def test_the_command_prints_table_and_json_and_writes_html(config_file, tmp_path):
    now = datetime.now(UTC)
    store = open_store(str(tmp_path / "relay.db"))
    put(store, [session("kitchen", started=now - timedelta(minutes=20)),
                session("kitchen", started=now - timedelta(days=2), status="stopped",
                        adherence=0.4),
                session("hall", started=now - timedelta(days=20)),
                session("bedroom", started=now - timedelta(minutes=9), analytics=False),
                telemetry("kitchen", fps=14.0)], now)
    store.close()

    data = json.loads(run_report(config_file, "--format", "json").output)
    assert (data["since_days"], len(data["per_day"])) == (7, 7)
    assert data["sessions"]["total"] == 2 and data["sessions"]["completion_rate"] == 0.5
    assert data["health"]["rows"][0]["device"] == "kitchen"
    month = json.loads(run_report(config_file, "--since", "30", "--format", "json").output)
    assert (month["sessions"]["total"], len(month["per_day"])) == (3, 30)

    table = run_report(config_file).output
    assert "Box breathing" in table and "completion rate 50.0%" in table
    assert "kitchen" in table and "bedroom" not in table

    out = tmp_path / "report.html"
    result = run_report(config_file, "--format", "html", "--output", str(out))
    assert str(out) in result.output  # said on stderr where it went
    html = out.read_text()
    assert html.startswith("<!doctype html>") and "bedroom" not in html
    assert "<script" not in html and "http://" not in html and "https://" not in html

    bad = CliRunner().invoke(main, ["--config", str(config_file), "relay", "report",
                                    "--since", "0"])
    assert bad.exit_code == 2 and "--since" in bad.output


def test_an_empty_relay_gives_an_empty_report_not_an_error(store):
    report = build_report(store, 7, now=NOW)
    assert report.sessions["total"] == 0 and report.sessions["completion_rate"] is None
    assert "no consenting sessions" in format_table(report)
    assert "No consenting sessions" in render_html(report)


@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs /usr/bin/chromium (apt)")
def test_the_html_report_renders_offline_in_chromium_with_its_charts(store, tmp_path):
    from playwright.sync_api import sync_playwright

    put(store, [session("kitchen", started=day(d), pattern_id=p, adherence=a, status=st)
                for d, p, a, st in [(0, "box", 0.9, "completed"), (1, "box", 0.7, "stopped"),
                                    (2, "sleep", 0.6, "completed"),
                                    (3, "custom-grandmas-calm", 0.8, "completed")]]
        + [session("bedroom", started=day(0), pattern_id="custom-secret-name",
                   analytics=False), telemetry("kitchen", fps=14.2)], NOW)
    page_file = tmp_path / "report.html"
    page_file.write_text(render_html(build_report(store, 7, now=NOW)))
    artefacts = Path(os.environ.get("BREATHE_TEST_ARTIFACTS", tmp_path))
    artefacts.mkdir(parents=True, exist_ok=True)

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1000, "height": 900})
            context.set_offline(True)
            page = context.new_page()
            requests: list[str] = []
            page.on("request", lambda r: requests.append(r.url))
            page.goto(page_file.as_uri())
            images = page.eval_on_selector_all(
                "figure img", "els => els.map(e => ({w: e.naturalWidth, done: e.complete, "
                "alt: e.alt, caption: e.closest('figure').querySelector('figcaption')"
                ".textContent}))")
            patterns = page.eval_on_selector_all(
                "#patterns tbody tr", "rows => rows.map(r => Array.from(r.children, "
                "c => c.textContent.trim()))")
            text = page.inner_text("body")
            page.screenshot(path=str(artefacts / "relay-report.png"), full_page=True)
        finally:
            browser.close()
    print(f"screenshot: {artefacts / 'relay-report.png'}")

    assert len(images) == 3  # per day, popularity, adherence
    assert all(i["done"] and i["w"] > 0 and i["alt"] and i["caption"] for i in images)
    assert "Box breathing: 2" in images[1]["alt"]
    assert {u.split(":", 1)[0] for u in requests} <= {"file", "data"}  # nothing fetched
    assert patterns == [["Box breathing", "2", "1", "80.0%"],
                        ["custom 5-0-7-0 s", "1", "1", "80.0%"],
                        ["Sleep", "1", "1", "60.0%"]]
    assert "Sessions4" in text.replace("\n", "") and "75.0%" in text
    for private in PRIVATE:
        assert private not in text
    assert (artefacts / "relay-report.png").stat().st_size > 10_000


# --- end to end: devices → mosquitto → relay → report ---------------------------------------

def test_through_mosquitto_and_the_relay_only_consenting_sessions_are_reported(broker, tmp_path,
                                                                               clean_env):
    from common.config import load_config
    from relay.fleetsim import SimDevice
    from relay.service import RelayService

    config = write_relay_config(broker, tmp_path)
    service = RelayService(load_config(config).relay, instance="report",
                           minter_factory=NoMinter().__call__).start()
    devices: list[SimDevice] = []
    try:
        assert service.consumer.subscribed.wait(10), "the relay did not subscribe"
        for name in ("kitchen", "bedroom", "attic"):
            devices.append(sim_device(broker, name))
        now = datetime.now(UTC)
        sent = {
            "kitchen": [session("kitchen", started=now - timedelta(hours=h), status=st,
                                adherence=a, pattern_id=p)
                        for h, st, a, p in [(1, "completed", 0.9, "box"),
                                            (26, "stopped", 0.3, "box"),
                                            (50, "completed", 0.8, "sleep")]],
            "bedroom": [session("bedroom", started=now - timedelta(hours=2), analytics=False)],
            "attic": [session("attic", started=now - timedelta(hours=3))],
        }
        for device in devices:
            device.publish(protocol.TELEMETRY, telemetry(
                device.device_id, analytics=device.device_id != "bedroom", fps=12.5))
            for message in sent[device.device_id]:
                device.publish(protocol.SESSIONS, message)
        for device in devices:
            acks = device.wait_acks({m.id for m in sent[device.device_id]})
            assert len(acks) == len(sent[device.device_id])
            assert all(a.ok for a in acks.values())
        attic = devices[2]
        attic.publish(protocol.RETRACT, Retraction(id="bye", device_id="attic"))
        assert attic.wait_acks(["bye"])["bye"].ok
    finally:
        for device in devices:
            device.close()
        service.stop()

    report = json.loads(run_report(config, "--format", "json").output)
    assert report["sessions"] == {"total": 3, "completed": 2, "stopped": 1, "interrupted": 0,
                                  "completion_rate": 0.6667, "devices": 1, "minutes": 15.0}
    assert {p["pattern"]: (p["sessions"], p["median_adherence"])
            for p in report["patterns"]} == {"box": (2, 0.6), "sleep": (1, 0.8)}
    assert [d["device"] for d in report["health"]["rows"]] == ["kitchen"]
    days = Counter(m.started.date().isoformat() for m in sent["kitchen"])
    assert {d["day"]: d["sessions"] for d in report["per_day"] if d["sessions"]} == dict(days)


def test_sessions_stored_before_the_wire_checks_are_left_out(store, caplog):
    """A relay from before the checks stored NaN, coverage -5 and end-before-start as they
    came; the report counts only what passes the checks made on arrival today."""
    good = session("kitchen", started=day(0))
    put(store, [good], day(0))
    stale = []
    for n, change in enumerate([{"duration_s": float("nan")},
                                {"metrics": {**good.metrics.to_dict(), "coverage": -5}},
                                {"ended": day(3).isoformat()}]):
        data = {**json.loads(good.encode()), "id": f"old-{n}", **change}
        message = good.model_copy(update={"id": f"old-{n}"})
        stale.append(Inbound("kitchen", protocol.SESSIONS, message, json.dumps(data)))
    store.record(stale, Counter(), timestamp(day(0)))
    assert store.stats()["sessions"] == 4
    assert [s.device for s in consenting_sessions(store, 7, NOW)] == ["kitchen"]
    assert "3 stored session(s) fail today's wire checks" in caplog.text
