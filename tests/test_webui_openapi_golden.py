"""The web API's OpenAPI document is pinned in ``tests/data/openapi_golden.json``: the phone app
and anyone scripting the device rely on it. A refactor must leave it byte-for-byte the same; a
deliberate API change writes it again (``python tests/test_webui_openapi_golden.py --write``)."""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from webui import create_app

GOLDEN = Path(__file__).parent / "data" / "openapi_golden.json"


def current() -> str:
    with tempfile.TemporaryDirectory() as data_dir:
        app = create_app({"DATA_DIR": data_dir, "SECRET_KEY": "golden", "TESTING": True})
        document = app.test_client().get("/api/openapi.json").get_json()
    return json.dumps(document, indent=1, sort_keys=True) + "\n"


def test_openapi_document_is_unchanged():
    assert current() == GOLDEN.read_text()


if __name__ == "__main__" and sys.argv[1:] == ["--write"]:
    GOLDEN.write_text(current())
