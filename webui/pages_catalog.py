"""The Catalog page: the fleet's shared patterns (browse, preview, try, import, rate) and the
owner's own patterns to share. A shell like the other pages; ``static/js/catalog.js`` fetches
everything from ``/api/catalog`` (``webui.api_catalog``)."""

from __future__ import annotations

from flask import Blueprint, render_template

from webui.auth import login_required
from webui.pages import page_headers

bp = Blueprint("pages_catalog", __name__)


bp.after_request(page_headers)  # the same headers as every other page


@bp.get("/catalog")
@login_required
def catalog() -> str:
    """Browse the shared catalog; share your own patterns."""
    return render_template("pages/catalog.html", page="catalog")
