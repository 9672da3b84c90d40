"""Config from the fleet (``config/desired``, ``set-config``): checked by the same pydantic
models as the TOML file, stored, reported back.

A change is a dotted key and a value, e.g. ``{"pacing.haptic_strength": 0.4}``. Each key is
accepted or rejected on its own with a reason a person can act on: the merged settings must
validate (the very rules ``breathe config check`` applies), and some keys never change from
afar:

- ``device.id`` / ``device.data_dir``: the broker identity and the data live there;
- ``mqtt.*`` except ``telemetry_interval_s`` and ``keepalive``: a wrong broker setting would cut
  the device off the fleet for good;
- ``web.*``: a wrong address or certificate would lock the owner out of their own device;
- ``privacy.*``: what leaves the device is the owner's choice, made on the device;
- ``relay.*`` (not a device setting), file paths, and ``camera.source = file:...``.

What changes at run time: ``mqtt.telemetry_interval_s`` (the sync client applies it at once)
and whatever :meth:`DeviceControls.apply_config` applies (the daemon decides, e.g. haptic
strength); everything accepted is stored (settings table, key ``fleet.config``) and applies
from the next start through :func:`with_overrides`, which the daemon calls after loading the
TOML file. The reported config is the effective one with secrets masked.
"""

from __future__ import annotations

import difflib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlite_utils import Database

from common.config.masking import mask_secrets
from common.config.models import Settings
from common.config.problems import problem_from_error
from device.store.settings_repo import get_setting, set_setting

log = logging.getLogger(__name__)

OVERRIDES_KEY = "fleet.config"
DESIRED_ID_KEY = "fleet.desired_id"
SYNC_RUNTIME = frozenset({"mqtt.telemetry_interval_s"})  # the sync client applies these itself

_FIXED_SECTIONS = {
    "web": "the web app's address and certificate are set on the device, so a wrong value "
           "cannot lock the owner out",
    "privacy": "privacy is the owner's choice, made on the device",
    "relay": "relay settings are not used by the device",
}
_MQTT_REMOTE = frozenset({"telemetry_interval_s", "keepalive"})
_FIXED_KEYS = {
    "device.id": "the device id is its broker identity; change it on the device",
    "device.data_dir": "the data directory is set on the device",
}


@dataclass
class ConfigOutcome:
    """What became of a set of changes."""

    accepted: dict[str, Any] = field(default_factory=dict)  # valid; stored for every start
    applied_now: dict[str, Any] = field(default_factory=dict)  # also in effect already
    rejected: dict[str, str] = field(default_factory=dict)  # key -> why

    @property
    def at_next_start(self) -> list[str]:
        return sorted(k for k in self.accepted if k not in self.applied_now)

    def to_dict(self) -> dict[str, Any]:
        return {"applied": self.accepted, "applied_now": sorted(self.applied_now),
                "at_next_start": self.at_next_start, "rejected": self.rejected}


def _fixed_reason(section: str, name: str, value: Any) -> str | None:
    key = f"{section}.{name}"
    if section in _FIXED_SECTIONS:
        return f"not settable from the fleet: {_FIXED_SECTIONS[section]}"
    if key in _FIXED_KEYS:
        return f"not settable from the fleet: {_FIXED_KEYS[key]}"
    if section == "mqtt" and name not in _MQTT_REMOTE:
        return ("not settable from the fleet: a wrong broker setting would cut the device off; "
                f"change it on the device (settable: {', '.join(sorted(_MQTT_REMOTE))})")
    annotation = str(getattr(Settings.model_fields[section].annotation, "model_fields",
                             {}).get(name).annotation)
    if "Path" in annotation:
        return "not settable from the fleet: file paths are set on the device"
    if key == "camera.source" and isinstance(value, str) and value.startswith("file:"):
        return "not settable from the fleet: video files are chosen on the device"
    return None


def _check_key(key: Any, value: Any) -> str | None:
    """Why ``key`` cannot be set at all (shape, unknown, fixed), or None."""
    if not isinstance(key, str) or key.count(".") != 1:
        return "not a settings key (allowed: section.key, e.g. pacing.haptic_strength)"
    section, name = key.split(".")
    sections = Settings.model_fields
    if section not in sections:
        near = difflib.get_close_matches(section, list(sections), n=1, cutoff=0.6)
        return "unknown section" + (f"; did you mean '{near[0]}'?" if near else "") + \
            f" (allowed: {', '.join(sections)})"
    model = sections[section].annotation
    names = list(getattr(model, "model_fields", {}))
    if name not in names:
        near = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
        return "unknown key" + (f"; did you mean '{section}.{near[0]}'?" if near else "") + \
            f" (allowed in {section}: {', '.join(names)})"
    return _fixed_reason(section, name, value)


def _describe(err: Any) -> tuple[set[str], str]:
    """(keys an error involves, its message) for one pydantic error on the whole settings."""
    problem = problem_from_error(err, "config", {})
    ctx = err.get("ctx") or {}
    path = [str(p) for p in err["loc"] if isinstance(p, str)]
    section = path[0] if path else ""
    names = set()
    if len(path) >= 2:
        names.add(path[1])
    if "field" in ctx:
        names.add(ctx["field"].partition("[")[0])
    names.update(ctx.get("also", ()))
    hints = "; ".join(x for x in (problem.got and f"got {problem.got}",
                                  problem.allowed and f"allowed {problem.allowed}") if x)
    return {f"{section}.{n}" for n in names}, problem.message + (f" ({hints})" if hints else "")


def _merged(settings: Settings, changes: dict[str, Any]) -> dict[str, Any]:
    data = settings.model_dump(mode="json")
    for key, value in changes.items():
        section, name = key.split(".")
        data[section][name] = value
    return data


def validate_changes(settings: Settings, changes: dict[str, Any]
                     ) -> tuple[dict[str, Any], dict[str, str], Settings]:
    """(accepted, rejected key -> reason, settings with the accepted changes)."""
    rejected: dict[str, str] = {}
    accepted: dict[str, Any] = {}
    for key, value in changes.items():
        reason = _check_key(key, value)
        if reason:
            rejected[str(key)] = reason
        else:
            accepted[key] = value
    while True:
        try:
            return accepted, rejected, Settings.model_validate(_merged(settings, accepted))
        except ValidationError as exc:
            blamed: dict[str, str] = {}
            for err in exc.errors():
                involved, message = _describe(err)
                guilty = involved & set(accepted) or {
                    k for k in accepted if k.split(".")[0] == str(err["loc"][0])} or set(accepted)
                for key in guilty:
                    blamed.setdefault(key, message)
            if not blamed:  # cannot happen while the starting settings are valid
                raise
            for key, message in blamed.items():
                accepted.pop(key, None)
                rejected[key] = message


def stored_overrides(db: Database) -> dict[str, Any]:
    value = get_setting(db, OVERRIDES_KEY, {})
    return value if isinstance(value, dict) else {}


def save_overrides(db: Database, accepted: dict[str, Any]) -> dict[str, Any]:
    """Merge ``accepted`` into the stored fleet overrides; returns them all."""
    merged = {**stored_overrides(db), **accepted}
    set_setting(db, OVERRIDES_KEY, merged)
    return merged


def with_overrides(settings: Settings, db_or_path: Database | str | Path) -> Settings:
    """``settings`` with the stored fleet overrides on top; one that no longer validates (an
    older version stored it, or the TOML changed under it) is skipped and logged."""
    if isinstance(db_or_path, Database):
        overrides = stored_overrides(db_or_path)
    else:
        from device.store.db import open_db

        db = open_db(db_or_path)
        try:
            overrides = stored_overrides(db)
        finally:
            db.close()
    if not overrides:
        return settings
    _, rejected, merged = validate_changes(settings, overrides)
    for key, reason in rejected.items():
        log.warning("stored fleet config %s=%r skipped: %s", key, overrides.get(key), reason)
    return merged


def reported_config(settings: Settings) -> dict[str, Any]:
    """The device's effective settings as reported to the fleet: secrets masked, no relay."""
    return mask_secrets(settings.model_dump(mode="json", exclude={"relay"}))
