"""The wire schema is a contract with devices and relays already in the field: every message's
JSON Schema and the exact bytes of typical messages are pinned in ``tests/data/wire_golden.json``.
A change here breaks older peers; if it is meant, bump ``SCHEMA`` and write the golden file again
(``python tests/test_wire_schema.py --write``)."""

from __future__ import annotations

import inspect
import json
import sys
from datetime import UTC, date, datetime
from pathlib import Path

from relay import fleetsim
from wire import protocol
from wire.protocol import Message

GOLDEN = Path(__file__).parent / "data" / "wire_golden.json"
AT = datetime(2025, 3, 1, 7, 30, tzinfo=UTC)


def _message_models() -> dict[str, type[Message]]:
    return {name: cls for name, cls in inspect.getmembers(protocol, inspect.isclass)
            if issubclass(cls, Message) and cls.__module__ == protocol.__name__}


def _examples() -> dict[str, bytes]:
    device = "dev-1"
    return {
        "session": fleetsim.session_message(device, "s1", analytics=True).encode(),
        "mint_request": protocol.MintRequest(
            id="m1", device_id=device, achievement="first_session", day=date(2025, 3, 1),
            commitment="c0" * 32, wallet=fleetsim.WALLET).encode(),
        "pattern_listing": fleetsim.pattern_listing(device, id="l1").encode(),
        "telemetry": protocol.Telemetry(id="t1", device_id=device, at=AT, uptime_s=120.0,
                                        fps=14.8, inference_ms=13.0, outbox_depth=2).encode(),
        "status": fleetsim.status(device).model_copy(update={"id": "st1"}).encode(),
        "ack": protocol.Ack(id="s1", ok=False, error="metrics.coverage: implausible").encode(),
        "ack_batch": protocol.Ack(id="s1", ok=True, ids=("s1", "s2", "s3")).encode(),
        "mint_result": protocol.MintResult(id="m1", ok=True, token_id="7", tx_hash="0x" + "ab" * 32,
                                           contract=fleetsim.WALLET, chain_id=31337).encode(),
    }


def current() -> dict:
    return {
        "schema_version": protocol.SCHEMA,
        "models": {name: cls.model_json_schema(by_alias=True)
                   for name, cls in sorted(_message_models().items())},
        "examples": {name: raw.decode() for name, raw in _examples().items()},
    }


def test_every_message_schema_and_typical_bytes_are_unchanged():
    golden = json.loads(GOLDEN.read_text())
    now = json.loads(json.dumps(current()))
    assert sorted(now["models"]) == sorted(golden["models"])
    for name in golden["models"]:
        assert now["models"][name] == golden["models"][name], f"{name}'s schema changed"
    assert now["examples"] == golden["examples"]
    assert now["schema_version"] == golden["schema_version"]


def test_golden_examples_decode_to_the_same_bytes():
    golden = json.loads(GOLDEN.read_text())
    models = {"session": protocol.SessionMessage, "mint_request": protocol.MintRequest,
              "pattern_listing": protocol.PatternListing, "telemetry": protocol.Telemetry,
              "status": protocol.Status, "ack": protocol.Ack, "ack_batch": protocol.Ack,
              "mint_result": protocol.MintResult}
    for name, text in golden["examples"].items():
        assert protocol.decode(models[name], text.encode()).encode() == text.encode()


if __name__ == "__main__" and sys.argv[1:] == ["--write"]:
    GOLDEN.write_text(json.dumps(current(), indent=1, sort_keys=True) + "\n")
