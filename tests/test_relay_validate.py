"""Every message the relay receives passes relay.validate.check, which must refuse whatever is
malformed, oversized, of the wrong schema or spoofed (payload device ≠ topic device) — and
never raise, never accept a message that speaks for another device, never log payload values.

Thousands of hostile messages go through the validation function directly here (fast);
tests/test_relay_service.py sends a few dozen through the real broker to a running relay.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from relay.fleetsim import mint_request, session_message, status, telemetry
from relay.validate import ACKED, REASONS, Inbound, Rejection, check
from wire import protocol

DEVICE = "kitchen"
OTHER = "bedroom"
SECRET = "Ada Lovelace breathes"  # stands for personal data inside a payload
SUBTOPICS = ["sessions", "mint/request", "status", "telemetry", "config/reported", "reply/x1"]
MANY = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _valid(kind: str, device: str = DEVICE) -> dict:
    """A valid payload of each kind, as a dict to mutate."""
    message = {
        "sessions": lambda: session_message(device, profile=SECRET),
        "mint/request": lambda: mint_request(device),
        "status": lambda: status(device),
        "telemetry": lambda: telemetry(device),
        "config/reported": lambda: protocol.ConfigReported(
            id="r1", device_id=device, applied={"pacing.gamma": 2.0}),
        "reply/x1": lambda: protocol.CommandReply(id="c1", ok=True, result={"pong": True}),
    }[kind]()
    return json.loads(message.encode())


def _topic(kind: str, device: str = DEVICE) -> str:
    return f"breathe/v1/{device}/{kind}"


@pytest.mark.parametrize("kind", SUBTOPICS)
def test_a_valid_message_of_each_kind_is_accepted_as_is(kind):
    payload = json.dumps(_valid(kind)).encode()
    result = check(_topic(kind), payload)
    assert isinstance(result, Inbound), result
    assert result.device_id == DEVICE
    assert result.payload == payload.decode()
    assert result.kind == ("reply" if kind.startswith("reply/") else kind)


@pytest.mark.parametrize(("topic", "payload", "reason"), [
    ("breathe/v1/kitchen/sessions", b"{not json", "not_json"),
    ("breathe/v1/kitchen/sessions", b"\xff\xfe", "not_json"),
    ("breathe/v1/kitchen/sessions", b"[1, 2]", "not_json"),
    ("breathe/v1/kitchen/sessions", b'{"schema": 2, "id": "a"}', "schema"),
    ("breathe/v1/kitchen/sessions", b'{"id": "a"}', "schema"),
    ("breathe/v1/kitchen/sessions", b'{"schema": 1, "id": "a", "device_id": "kitchen"}',
     "invalid"),
    ("breathe/v1/kitchen/sessions", b" " * (protocol.MAX_PAYLOAD_BYTES + 1), "oversized"),
    ("breathe/v1/kitchen/ack", b"{}", "topic"),
    ("breathe/v1/kitchen/cmd/ping", b"{}", "topic"),
    ("breathe/v1/Kitchen/sessions", b"{}", "topic"),
    ("breathe/v2/kitchen/sessions", b"{}", "topic"),
    ("breathe/v1/kitchen/reply", b"{}", "topic"),
])
def test_each_kind_of_bad_message_is_refused_with_its_reason(topic, payload, reason):
    """Also keeps the reason names honest if protocol.decode's wording changes."""
    result = check(topic, payload)
    assert isinstance(result, Rejection)
    assert result.reason == reason, result


@pytest.mark.parametrize("kind", ["sessions", "mint/request", "status", "telemetry",
                                  "config/reported"])
def test_a_payload_naming_another_device_is_refused_as_spoofed(kind):
    result = check(_topic(kind), json.dumps(_valid(kind, device=OTHER)).encode())
    assert isinstance(result, Rejection)
    assert result.reason == "spoofed"
    assert result.device_id == DEVICE  # the sender, per the broker's ACL
    assert OTHER in result.detail


def test_a_refused_session_still_names_its_id_so_the_device_can_stop_resending():
    payload = _valid("sessions")
    payload["duration_s"] = -5
    result = check(_topic("sessions"), json.dumps(payload).encode())
    assert isinstance(result, Rejection) and result.reason == "implausible"
    assert result.message_id == payload["id"]
    assert "duration_s" in result.detail


def _session_with(**change) -> bytes:
    payload = _valid("sessions")
    for dotted, value in change.items():
        *parents, leaf = dotted.split("__")
        target = payload
        for part in parents:
            target = target[part]
        target[leaf] = value
    return json.dumps(payload).encode()


@pytest.mark.parametrize(("payload", "reason"), [
    (b"[" * 60000, "too_deep"),  # a RecursionError inside json, once: a traceback per message
    (b'{"schema": 1, "id": "a", "x": ' + b'{"a": ' * 9 + b"1" + b"}" * 10, "too_deep"),
    (_session_with()[:-1] + b', "device_id": "kitchen"}', "duplicate_key"),
    (b'{"device_id": "bedroom", ' + _session_with()[1:], "duplicate_key"),
    (_session_with(duration_s=1.0).replace(b'"duration_s": 1.0', b'"duration_s": NaN'),
     "non_finite"),
    (_session_with(duration_s=1.0).replace(b'"duration_s": 1.0', b'"duration_s": Infinity'),
     "non_finite"),
    (_session_with(duration_s=1.0).replace(b'"duration_s": 1.0', b'"duration_s": 1e999'),
     "non_finite"),
    (_session_with(metrics__coverage=-5), "implausible"),
    (_session_with(metrics__adherence=1.5), "implausible"),
    (_session_with(metrics__cycles_completed=-1_000_000), "implausible"),
    (_session_with(metrics__rate__median=900.0), "implausible"),
    (_session_with(metrics__holds__longest_s=90_000.0), "implausible"),
    (_session_with(started="9999-01-01T00:00:00+00:00", ended="1970-01-01T00:00:00+00:00"),
     "implausible"),
    (_session_with(started="2025-03-01T08:00:00+00:00", ended="2025-03-03T08:00:00+00:00"),
     "implausible"),  # a session of two days
    (_session_with(started="1970-01-01T00:00:00+00:00", ended="1970-01-01T00:05:00+00:00"),
     "implausible"),  # before the relay's window
    (_session_with(started="2999-01-01T00:00:00+00:00", ended="2999-01-01T00:05:00+00:00"),
     "implausible"),  # after it
])
def test_nonsense_that_fits_the_schema_is_refused_with_its_reason(payload, reason):
    result = check(_topic("sessions"), payload)
    assert isinstance(result, Rejection), result
    assert result.reason == reason, result
    assert len(result.log_line().splitlines()) == 1


@pytest.mark.parametrize(("change", "where", "allowed"), [
    ({"metrics__coverage": -5}, "metrics.coverage", "greater than or equal to 0"),
    ({"metrics__rate__median": 900.0}, "metrics.rate.median", "less than or equal to 120"),
    ({"metrics__adherence_by_phase": {"inhale": 1.5}}, "metrics.adherence_by_phase.inhale",
     "less than or equal to 1"),
    ({"metrics__timeline": [{"second": 0, "target_phase": "inhale", "quality": 2.0}]},
     "metrics.timeline.0.quality", "less than or equal to 1"),
])
def test_an_implausible_value_is_named_with_its_range(change, where, allowed):
    """The ranges live in the models' types: the detail says which value and what is allowed."""
    result = check(_topic("sessions"), _session_with(**change))
    assert isinstance(result, Rejection) and result.reason == "implausible", result
    assert result.detail.startswith(f"{where}: ") and allowed in result.detail, result.detail


def test_timestamps_are_judged_by_the_relays_clock():
    from datetime import UTC, datetime

    payload = json.dumps(_valid("telemetry")).encode()
    assert isinstance(check(_topic("telemetry"), payload), Inbound)
    later = datetime(2999, 1, 1, tzinfo=UTC)  # the relay's clock far ahead: now too old
    result = check(_topic("telemetry"), payload, now=later)
    assert isinstance(result, Rejection) and result.reason == "implausible"
    assert "at is not within" in result.detail


_FRACTIONS = ["adherence", "coverage", "presence", "stillness"]


@MANY
@given(field=st.sampled_from(_FRACTIONS),
       value=st.floats(allow_nan=False, allow_infinity=False, width=32))
def test_a_fraction_is_accepted_only_within_0_to_1(field, value):
    result = _assert_safe(_topic("sessions"), _session_with(**{f"metrics__{field}": value}))
    assert isinstance(result, Inbound) == (0.0 <= value <= 1.0), result


@MANY
@given(kind=st.sampled_from(SUBTOPICS), field=st.sampled_from(["id", "metrics", "uptime_s",
                                                                "duration_s", "fps",
                                                                "ok", "applied", "state"]),
       poison=st.sampled_from(["NaN", "-Infinity", "1e400", "dup", "deep"]))
def test_poisoned_json_never_passes(kind, field, poison):
    payload = _valid(kind)
    payload[field] = "POISON"
    text = json.dumps(payload)
    replacement = {"NaN": "NaN", "-Infinity": "-Infinity", "1e400": "1e400",
                   "dup": '{"a": 1, "a": 2}', "deep": "[" * 12 + "]" * 12}[poison]
    result = _assert_safe(_topic(kind), text.replace('"POISON"', replacement).encode())
    assert isinstance(result, Rejection)
    if poison == "1e400":  # reads as infinity: refused where a number goes, else mistyped
        assert result.reason in ("non_finite", "invalid")
    else:
        assert result.reason == {"NaN": "non_finite", "-Infinity": "non_finite",
                                 "dup": "duplicate_key", "deep": "too_deep"}[poison]


# --- property tests: ≥ 1,000 hostile messages in all -------------------------------------------

def _assert_safe(topic: str, payload: bytes) -> Inbound | Rejection:
    result = check(topic, payload)  # never raises
    if isinstance(result, Inbound):
        device, _ = protocol.split_topic(topic)
        assert result.device_id == device
        assert getattr(result.message, "device_id", device) == device
        assert len(payload) <= protocol.MAX_PAYLOAD_BYTES
    else:
        assert result.reason in REASONS
        assert SECRET not in result.log_line()
        if result.message_id is not None:
            assert result.kind in ACKED
    return result


@MANY
@given(kind=st.sampled_from(SUBTOPICS), payload=st.binary(max_size=300))
def test_random_bytes_never_pass_or_crash(kind, payload):
    result = _assert_safe(_topic(kind), payload)
    assert isinstance(result, Rejection)


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20)
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner,
                                                                max_size=4),
    max_leaves=20)


@MANY
@given(kind=st.sampled_from(SUBTOPICS), field=st.sampled_from(
    ["schema", "id", "device_id", "pattern", "metrics", "started", "duration_s", "wallet",
     "commitment", "state", "uptime_s", "applied", "ok", "extra_field"]), value=_json)
def test_a_valid_message_with_one_field_replaced_is_accepted_only_if_still_valid(kind, field,
                                                                                 value):
    payload = _valid(kind)
    payload[field] = value
    result = _assert_safe(_topic(kind), json.dumps(payload).encode())
    if field == "device_id" and value != DEVICE and isinstance(result, Rejection):
        assert result.reason in ("spoofed", "invalid")
    if field == "schema" and value != 1:
        assert isinstance(result, Rejection) and result.reason == "schema"
    if field == "extra_field":
        assert isinstance(result, Rejection) and result.reason == "invalid"


@MANY
@given(kind=st.sampled_from(SUBTOPICS[:-1]),
       claimed=st.from_regex(protocol.DEVICE_ID_PATTERN, fullmatch=True),
       sender=st.from_regex(protocol.DEVICE_ID_PATTERN, fullmatch=True))
def test_no_device_can_speak_for_another(kind, claimed, sender):
    result = _assert_safe(_topic(kind, sender), json.dumps(_valid(kind, claimed)).encode())
    if claimed == sender:
        assert isinstance(result, Inbound)
    else:
        assert isinstance(result, Rejection) and result.reason == "spoofed"


@settings(max_examples=60, deadline=None)
@given(kind=st.sampled_from(SUBTOPICS), extra=st.integers(1, 3 * protocol.MAX_PAYLOAD_BYTES))
def test_anything_over_the_size_cap_is_refused_before_parsing(kind, extra):
    payload = _valid(kind)
    payload["pad"] = "x" * (protocol.MAX_PAYLOAD_BYTES + extra)
    result = _assert_safe(_topic(kind), json.dumps(payload).encode())
    assert isinstance(result, Rejection) and result.reason == "oversized"


@pytest.mark.parametrize("limit", [1000, 200_000])
def test_deep_nesting_is_too_deep_whatever_the_interpreters_recursion_limit(limit):
    """A library may raise the recursion limit; then json reads to the end of b"[" * 60000
    and fails there instead: still called too_deep, still no traceback."""
    import sys

    before = sys.getrecursionlimit()
    sys.setrecursionlimit(limit)
    try:
        result = check(_topic("sessions"), b"[" * 60000)
    finally:
        sys.setrecursionlimit(before)
    assert isinstance(result, Rejection) and result.reason == "too_deep"
