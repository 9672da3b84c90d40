"""Token metadata as a ``data:`` URI: self-contained, stored on chain, nothing personal.

ERC-721 metadata JSON (name, description, attributes) plus the salted commitment. No device id,
no wallet (the token's owner is the wallet already), no session numbers. The JSON is canonical
(sorted keys, no spaces), so the same request always yields the same URI.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from relay.chain.errors import BadMintRequest
from relay.chain.request import CheckedMint

DATA_URI_PREFIX = "data:application/json;base64,"
# Every byte of the URI is stored on chain (about 700 gas each), so the words are few.
COMMITMENT_SCHEME = "sha256(salt || session summary); the salt stays on the device"


def achievement_title(kind: str) -> str:
    """The title the device shows for ``kind``; an unknown (newer) kind reads as its words."""
    from device.session.history import ACHIEVEMENTS

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
