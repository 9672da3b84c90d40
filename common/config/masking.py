"""Hide secrets before settings are printed or shown in an error message."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

_SECRET_KEY = re.compile(r"(?i)(password|secret|token|private_key|api_key)$")
_TOKEN = re.compile(r"^(?=.*[0-9])(?=.*[A-Za-z])[A-Za-z0-9_-]{20,}$")  # API keys in RPC URLs


def mask_url(url: str) -> str:
    """Hide URL passwords, query values and token-like path segments (RPC API keys)."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.password:
        netloc = netloc.replace(f":{parts.password}@", ":***@", 1)
    path = "/".join("***" if _TOKEN.match(seg) else seg for seg in parts.path.split("/"))
    query = "&".join(f"{kv.split('=', 1)[0]}=***" if "=" in kv else kv
                     for kv in parts.query.split("&")) if parts.query else ""
    return urlunsplit((parts.scheme, netloc, path, query, parts.fragment))


def mask_secrets(data: Any, key: str = "") -> Any:
    """A copy of dumped settings safe to print: secret-named values and URL credentials hidden."""
    if isinstance(data, Mapping):
        return {k: mask_secrets(v, str(k)) for k, v in data.items()}
    if isinstance(data, list):
        return [mask_secrets(v, key) for v in data]
    if _SECRET_KEY.search(key) and data not in (None, ""):
        return "***"
    if isinstance(data, str) and "://" in data:
        return mask_url(data)
    return data
