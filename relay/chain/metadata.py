"""Token metadata as a ``data:`` URI: self-contained, stored on chain, nothing personal.

ERC-721 metadata JSON (name, description, attributes) plus, for an achievement, the salted
commitment; for a pattern, its phases, cycle, category and content hash. No device id, no
wallet (the token's owner is the wallet already), no session numbers, no creator name. The JSON
is canonical (sorted keys, no spaces), so the same request always yields the same URI.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from relay.chain.errors import BadMintRequest
from relay.chain.request import CheckedMint, CheckedPatternMint
from wire.achievements import ACHIEVEMENTS

DATA_URI_PREFIX = "data:application/json;base64,"
# Every byte of the URI is stored on chain (about 700 gas each), so the words are few.
COMMITMENT_SCHEME = "sha256(salt || session summary); the salt stays on the device"
CONTENT_HASH_SCHEME = ("sha256 of the canonical JSON of inhale, hold_in, exhale, hold_out "
                       "(seconds rounded to 0.1, sorted keys, no spaces)")


def achievement_title(kind: str) -> str:
    """The title the device shows for ``kind``; an unknown (newer) kind reads as its words."""
    return ACHIEVEMENTS.get(kind) or kind.replace("_", " ").capitalize()


def token_metadata(mint: CheckedMint) -> dict[str, Any]:
    """The metadata JSON object for one achievement token."""
    title = achievement_title(mint.achievement)
    day = mint.day.isoformat()
    return {
        "name": f"Breathe: {title}",
        "description": (f"Breathing practice achievement earned on {day}. The commitment "
                        "proves it against the record kept on the owner's device."),
        "attributes": [
            {"trait_type": "Achievement", "value": mint.achievement},
            {"trait_type": "Day", "value": day},
        ],
        "commitment": mint.commitment,
        "commitment_scheme": COMMITMENT_SCHEME,
    }


def _seconds(value: float) -> int | float:
    """4.0 -> 4, 5.5 -> 5.5: the shortest exact JSON number."""
    return int(value) if float(value).is_integer() else float(value)


def pattern_metadata(mint: CheckedPatternMint) -> dict[str, Any]:
    """The metadata JSON object for one pattern token: what a player needs to breathe it."""
    pattern = mint.pattern
    phases = {name: _seconds(seconds) for name, seconds in pattern.phases}
    cycle = _seconds(pattern.cycle_s)
    description = pattern.description or (
        f"A {mint.category} breathing pattern, {pattern.label} s per phase "
        "(inhale, hold, exhale, hold).")
    return {
        "name": f"Breathe pattern: {pattern.name}",
        "description": description,
        "attributes": [
            {"trait_type": "Category", "value": mint.category},
            {"trait_type": "Phases", "value": pattern.label},
            {"trait_type": "Cycle (s)", "value": cycle, "display_type": "number"},
        ],
        "phases": phases,
        "cycle_s": cycle,
        "category": mint.category,
        "content_hash": mint.content_hash,
        "content_hash_scheme": CONTENT_HASH_SCHEME,
    }


def pattern_token_uri(mint: CheckedPatternMint) -> str:
    return encode_token_uri(pattern_metadata(mint))


def encode_token_uri(metadata: dict[str, Any]) -> str:
    """``data:application/json;base64,...`` of the canonical JSON."""
    text = json.dumps(metadata, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return DATA_URI_PREFIX + base64.b64encode(text.encode()).decode("ascii")


def token_uri(mint: CheckedMint) -> str:
    return encode_token_uri(token_metadata(mint))


def decode_token_uri(uri: str) -> dict[str, Any]:
    """The metadata behind a URI this module made (for tests, the CLI and explorers)."""
    if not uri.startswith(DATA_URI_PREFIX):
        raise BadMintRequest(f"token URI {uri[:40]!r}...: expected {DATA_URI_PREFIX!r}")
    try:
        data = json.loads(base64.b64decode(uri[len(DATA_URI_PREFIX):], validate=True))
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadMintRequest(f"token URI: not base64 JSON ({exc})") from None
    if not isinstance(data, dict):
        raise BadMintRequest(f"token URI: expected a JSON object, got {type(data).__name__}")
    return data
