"""The relay's own checks on catalog messages, on top of the wire schema's pydantic models.

A listing is shown to every device in the fleet, so its words are treated as hostile input:
the relay refuses *markup* in anything a person wrote (pattern name, description, benefits,
creator name, tags) rather than trusting each device's web page to escape it. Markup means:

- an angle bracket ``<`` or ``>`` (any HTML tag, comment or closing tag);
- an HTML character reference: ``&#`` (numeric, with or without ``;``) or ``&name;`` (named);
- a script-capable URL scheme: ``javascript:``, ``vbscript:``, ``data:`` or ``livescript:``
  (case-insensitive, also when whitespace or control characters are slipped in between).

Plain prose passes: ampersands between words ("calm & focus"), colons ("Note: slow"),
quotes and apostrophes. Tags are checked by the wire schema (:data:`protocol.TAG_PATTERN`).
The relay recomputes :func:`protocol.content_hash` from the phases and refuses a listing whose
claimed hash differs. The response topic of a ``catalog/query`` must be under the asking
device's own inbox, so no device can make the relay publish into another device's subtree.
"""

from __future__ import annotations

import re

from wire import protocol
from wire.protocol import Message, PatternListing

_ANGLE = re.compile(r"[<>]")
_CHAR_REF = re.compile(r"&(#|[A-Za-z][A-Za-z0-9]{1,31};)")
_SCHEME = re.compile(r"(javascript|vbscript|livescript|data):", re.IGNORECASE)
_IGNORED_INSIDE = re.compile(r"[\s\x00-\x1f\x7f]+")
_INBOX_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def markup_in(text: str) -> str | None:
    """What kind of markup ``text`` contains (for the error message), or None if plain."""
    if _ANGLE.search(text):
        return "an angle bracket '<' or '>'"
    if _CHAR_REF.search(text):
        return "an HTML character reference ('&#...' or '&name;')"
    if _SCHEME.search(_IGNORED_INSIDE.sub("", text)):
        return "a script URL scheme (javascript:, vbscript:, livescript: or data:)"
    return None


def _texts(listing: PatternListing) -> list[tuple[str, str]]:
    pattern = listing.pattern
    fields = [("pattern.name", pattern.name), ("pattern.description", pattern.description),
              ("creator", listing.creator)]
    fields += [(f"pattern.benefits.{i}", text) for i, text in enumerate(pattern.benefits)]
    fields += [(f"tags.{i}", tag) for i, tag in enumerate(listing.tags)]
    return fields


def recheck(message: Message) -> tuple[str, str] | None:
    """(reason, detail) when a schema-valid catalog message is still refused, else None.

    Reasons: ``markup`` or ``content_hash``; details name the field, never its value."""
    if isinstance(message, PatternListing):
        for field, text in _texts(message):
            found = markup_in(text)
            if found:
                return ("markup", f"{field} contains {found}; names, descriptions, creator "
                        "names and tags must be plain text")
        expected = protocol.content_hash(message.pattern)
        if message.content_hash != expected:
            return ("content_hash", "content_hash does not match the pattern's phases (the "
                    "relay recomputes it with protocol.content_hash)")
    return None


def inbox_of(device_id: str, response_topic: str | None) -> str | None:
    """Why ``response_topic`` may not carry an answer to ``device_id`` (None: it may).

    Allowed: exactly ``breathe/v1/<device_id>/inbox/<id>``, id = 1-64 of [A-Za-z0-9_-]."""
    if not response_topic:
        return "no MQTT v5 response topic"
    prefix = protocol.topic(device_id, protocol.INBOX) + "/"
    if not response_topic.startswith(prefix) or not _INBOX_ID.match(
            response_topic[len(prefix):]):
        return (f"response topic is not under {prefix} (a device may only ask for answers "
                "in its own inbox)")
    return None
