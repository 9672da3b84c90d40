"""The app's pages: HTML shells that fetch their data from the JSON API, plus the PWA files.

Each page is a small template and one script under ``static/js``; nothing personal is rendered
on the server except what ``base.html`` already shows (the owner's name, auto-escaped), so a
page cached by the service worker holds no data the API would not also give offline.

The service worker is served from ``/sw.js`` (not ``/static/sw.js``) so its scope is the whole
site; the manifest from ``/manifest.webmanifest``. Neither needs a login: they are code, not
data. No route here serves camera frames, and none ever may: nothing visual leaves the device.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, abort, current_app, render_template, send_from_directory

from webui.auth import login_required

bp = Blueprint("pages", __name__)

THEME_COLOUR = "#0b5d6b"
BACKGROUND_COLOUR = "#f6faf9"
ICON_SIZES = (48, 72, 96, 144, 192, 256, 512)
# Session ids are made by the store (uuid hex); anything else cannot be one.
_SESSION_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

# Same-origin only: every script, style, image and connection comes from the device itself.
CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "connect-src 'self'",
    "manifest-src 'self'",
    "worker-src 'self'",
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
])


@bp.after_request
def page_headers(response: Response) -> Response:
    response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    if response.mimetype == "text/html":
        # Pages are shells; the service worker keeps its own copy for offline use.
        response.headers.setdefault("Cache-Control", "no-cache")
    return response


# The shells that are a template and nothing else: endpoint -> (address, page). The page names
# the template (``pages/<page>.html``) and the navigation entry ``base.html`` marks.
SHELLS = {
    "index": ("/", "home"),  # choose a pattern and a duration, start
    "live": ("/live", "live"),  # the session in progress: guide, measured breath, controls
    "history": ("/history", "history"),
    "patterns": ("/patterns", "patterns"),
    "settings": ("/settings", "settings"),
}


def _shell(page: str) -> Callable[[], str]:
    @login_required
    def view() -> str:
        return render_template(f"pages/{page}.html", page=page)

    return view


for _endpoint, (_rule, _page) in SHELLS.items():
    bp.add_url_rule(_rule, _endpoint, _shell(_page), methods=["GET"])


@bp.get("/sessions/<session_id>")
@login_required
def summary(session_id: str) -> str:
    """One session's summary; the id is read by the script from the address, so one cached
    shell serves every session offline."""
    if not _SESSION_ID.match(session_id):
        abort(404)
    return render_template("pages/summary.html", page="summary")


@bp.get("/sw.js")
def service_worker() -> Response:
    """The service worker, at the root so it may control every page."""
    response = send_from_directory(current_app.static_folder or "static", "sw.js",
                                   mimetype="text/javascript", max_age=0)
    response.headers["Cache-Control"] = "no-cache"
    response.headers["Service-Worker-Allowed"] = "/"
    return response


@bp.get("/manifest.webmanifest")
def manifest() -> Response:
    """What Chromium needs to offer "Install": names, start page, standalone, icons."""
    icons: list[dict[str, str]] = [
        {"src": f"/static/icons/icon-{size}.png", "sizes": f"{size}x{size}", "type": "image/png",
         "purpose": "any"}
        for size in ICON_SIZES
    ]
    icons.append({"src": "/static/icons/maskable-512.png", "sizes": "512x512",
                  "type": "image/png", "purpose": "maskable"})
    body = {
        "name": "Breathe",
        "short_name": "Breathe",
        "description": "Paced breathing with your Breathe device: live guide, history, "
                       "patterns.",
        "id": "/",
        "start_url": "/",
        "scope": "/",
        "display": "standalone",
        "orientation": "portrait",
        "theme_color": THEME_COLOUR,
        "background_color": BACKGROUND_COLOUR,
        "icons": icons,
    }
    response = current_app.response_class(
        current_app.json.dumps(body), mimetype="application/manifest+json"
    )
    response.headers["Cache-Control"] = "no-cache"
    return response


@bp.app_context_processor
def _theme() -> dict[str, Any]:
    return {"theme_colour": THEME_COLOUR}
