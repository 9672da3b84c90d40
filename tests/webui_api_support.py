"""Shared pieces of the JSON API tests: a claimed device, a logged-in client with its CSRF
token, a real Appliance on mock GPIO pins and a FakeClock, and sessions written to the store.

Imported by the tests/test_webui_api*.py modules (pytest finds the fixtures by name).
"""

from __future__ import annotations

import atexit
import functools
import re
import shutil
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from common.config import Settings
from device.clock import FakeClock
from device.session.appliance import build_appliance
from device.store import db_path_for, open_db
from device.store.owner_codes import claim_code
from device.store.sessions_repo import create_session, finish_session
from webui import create_app
from webui.security import claim, find_owner
from wire.metrics import TimelinePoint

NAME = "Ada"
PASSWORD = "correct horse battery"
_TOKEN = re.compile(r'name="csrf_token"[^>]* value="([^"]+)"')


class ApiClient:
    """A test client that sends the CSRF token on every state-changing request."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.token: str | None = None

    def login(self, name: str = NAME, password: str = PASSWORD, *, form: bool = False
              ) -> ApiClient:
        """Log in: through the login form, or (default, no 0.2 s scrypt check) by writing
        the owner into the session as the form would."""
        if not form:
            db = open_db(db_path_for(self.client.application.config["DATA_DIR"]))
            try:
                owner = find_owner(db)
            finally:
                db.close()
            with self.client.session_transaction() as session:
                session["owner"], session["epoch"] = owner.profile.id, owner.session_epoch
                session.permanent = True
            self.token = self.client.get("/api/csrf").get_json()["csrf_token"]
            return self
        page = self.client.get("/login").get_data(as_text=True)
        token = _TOKEN.search(page).group(1)
        response = self.client.post("/login", data={"csrf_token": token, "name": name,
                                                     "password": password})
        assert response.status_code == 302, response.get_data(as_text=True)
        self.token = self.client.get("/api/csrf").get_json()["csrf_token"]
        return self

    def _headers(self, extra: dict[str, str] | None) -> dict[str, str]:
        return {"X-CSRFToken": self.token or "", **(extra or {})}

    def get(self, path: str, **kw: Any) -> Any:
        return self.client.get(path, **kw)

    def post(self, path: str, json: Any = None, headers: dict[str, str] | None = None,
             **kw: Any) -> Any:
        return self.client.post(path, json=json, headers=self._headers(headers), **kw)

    def put(self, path: str, json: Any = None, headers: dict[str, str] | None = None,
            **kw: Any) -> Any:
        return self.client.put(path, json=json, headers=self._headers(headers), **kw)

    def delete(self, path: str, headers: dict[str, str] | None = None, **kw: Any) -> Any:
        return self.client.delete(path, headers=self._headers(headers), **kw)


def make_app(data_dir: Any, **config: Any) -> Any:
    return create_app({"DATA_DIR": data_dir, "TESTING": True, "ISSUE_CLAIM_CODE": False,
                       "CLOCK": FakeClock(start=1000.0), **config})


@functools.cache
def _claimed_template() -> tuple[Path, str]:
    """A database claimed for NAME / PASSWORD, made once per test run (scrypt is slow)."""
    where = Path(tempfile.mkdtemp(prefix="breathe-claimed-"))
    atexit.register(shutil.rmtree, where, True)
    code = claim_code(where)
    db = open_db(db_path_for(where))
    try:
        owner_id = claim(db, code, NAME, PASSWORD).id
    finally:
        db.close()
    return db_path_for(where), owner_id


def claim_device(data_dir: Any) -> str:
    """Make the device at ``data_dir`` claimed for NAME / PASSWORD; returns the owner's
    profile id. A fresh data dir gets a copy of one claimed database (fast); an existing
    database, perhaps open elsewhere, is claimed in place."""
    target = db_path_for(data_dir)
    if target.exists():
        code = claim_code(data_dir)
        db = open_db(target)
        try:
            return claim(db, code, NAME, PASSWORD).id
        finally:
            db.close()
    template, owner_id = _claimed_template()
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(template, target)
    return owner_id


def logged_in(data_dir: Any, **config: Any) -> ApiClient:
    """The owner, logged in, on a new app for the claimed device at ``data_dir`` (``config``:
    extra app config, e.g. ``APPLIANCE``); the app is ``.client.application``."""
    app = make_app(data_dir, **config)
    claim_device(data_dir)
    return ApiClient(app.test_client()).login()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start=100.0)


@pytest.fixture
def appliance(data_dir, clock, factory) -> Iterator[Any]:
    """The real appliance (engine + mock GPIO outputs, no camera) on the fake clock."""
    built = build_appliance(Settings(), db_path_for(data_dir), pattern=None, camera=False,
                            gpio=True, clock=clock)
    yield built
    built.close()


@pytest.fixture
def app(data_dir):
    return make_app(data_dir)


@pytest.fixture
def owner_id(data_dir, app) -> str:
    return claim_device(data_dir)


@pytest.fixture
def api(app, owner_id) -> ApiClient:
    return ApiClient(app.test_client()).login()


@pytest.fixture
def db(data_dir) -> Iterator[Any]:
    handle = open_db(db_path_for(data_dir))
    yield handle
    handle.close()


def step(engine: Any, clock: FakeClock, seconds: float, dt: float = 0.1) -> None:
    """Run the engine's loop for ``seconds`` of fake time."""
    for _ in range(int(round(seconds / dt))):
        engine.step()
        clock.advance(dt)


def stored_session(db: Any, *, days_ago: float = 0.0, minutes: float = 5.0,
                   pattern_id: str = "box", adherence: float | None = 0.8,
                   rate: float | None = 6.0, status: str = "completed",
                   seconds_of_timeline: int = 3, now: datetime | None = None) -> str:
    """A finished session written straight to the store, started ``days_ago`` days ago."""
    started = (now or datetime.now(UTC)) - timedelta(days=days_ago)
    record = create_session(db, pattern_id, now=started)
    metrics = {"duration_s": minutes * 60, "adherence": adherence, "coverage": 0.9,
               "rate": {"median": rate}}
    timeline = [TimelinePoint(second=s, target_phase="inhale", measured_phase="inhale",
                              rate=rate, quality=0.8, displacement=0.01)
                for s in range(seconds_of_timeline)]
    finish_session(db, record.id, status=status, duration_s=minutes * 60, metrics=metrics,
                   timeline=timeline, now=started + timedelta(minutes=minutes))
    return record.id
