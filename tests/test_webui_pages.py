"""The web app's pages and PWA files through the Flask test client: login, rendering, escaping,
the manifest and service worker, and that nothing ever serves a camera image."""

from __future__ import annotations

import io
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from PIL import Image

from device.store.owner_codes import claim_code
from webui import create_app, pages

NAME = "Ada"
PASSWORD = "correct horse battery"
PAGES = {"/": "home", "/live": "live", "/sessions/abc123": "summary", "/history": "history",
         "/patterns": "patterns", "/settings": "settings"}
STATIC = Path(pages.__file__).parent / "static"
TEMPLATES = Path(pages.__file__).parent / "templates"
_TOKEN = re.compile(r'name="csrf_token"[^>]* value="([^"]+)"')


@pytest.fixture
def app(data_dir):
    return create_app({"DATA_DIR": data_dir, "TESTING": True, "ISSUE_CLAIM_CODE": False})


@pytest.fixture
def client(app):
    return app.test_client()


def token_from(client, path: str) -> str:
    match = _TOKEN.search(client.get(path).get_data(as_text=True))
    assert match, f"no CSRF token on {path}"
    return match.group(1)


def claim_as(client, data_dir, name: str = NAME):
    """Claim the device through its form; the claimer is logged in afterwards."""
    response = client.post("/claim", data={
        "csrf_token": token_from(client, "/claim"), "code": claim_code(data_dir),
        "display_name": name, "password": PASSWORD, "confirm": PASSWORD})
    assert response.status_code == 302, response.get_data(as_text=True)
    return response


@pytest.fixture
def logged_in(client, data_dir):
    claim_as(client, data_dir)
    return client


class Links(HTMLParser):
    """Every src/href, the landmarks, headings and labelled form controls of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.label_for: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        self.tags.append((tag, found))
        for key in ("src", "href"):
            if found.get(key):
                self.urls.append(found[key] or "")
        if tag == "label" and found.get("for"):
            self.label_for.add(found["for"] or "")

    def all(self, tag: str) -> list[dict[str, str | None]]:
        return [attrs for name, attrs in self.tags if name == tag]


def parse(html: str) -> Links:
    parser = Links()
    parser.feed(html)
    return parser


def test_pages_need_a_claimed_device_and_a_login(client, data_dir):
    for path in PAGES:
        assert client.get(path).headers["Location"] == "/claim"
    claim_as(client, data_dir)
    client.post("/logout", data={"csrf_token": token_from(client, "/")})
    for path in PAGES:
        response = client.get(path)
        assert response.status_code == 302
        assert response.headers["Location"] == f"/login?next={path}"


def test_logging_in_lands_on_the_home_page(client, data_dir):
    assert claim_as(client, data_dir).headers["Location"] == "/"


def test_each_page_renders_its_shell_with_landmarks_and_its_script(logged_in):
    for path, name in PAGES.items():
        response = logged_in.get(path)
        html = response.get_data(as_text=True)
        assert response.status_code == 200, path
        assert response.mimetype == "text/html"
        assert "script-src 'self'" in response.headers["Content-Security-Policy"]
        page = parse(html)
        assert len(page.all("main")) == 1 and len(page.all("h1")) == 1
        assert page.all("nav")[0]["aria-label"] == "Main"
        current = [a["href"] for a in page.all("a") if a.get("aria-current") == "page"]
        assert current == ([path] if path in ("/", "/history", "/patterns", "/settings")
                           else []), path
        scripts = [s["src"] for s in page.all("script")]
        assert f"/static/js/{name}.js" in scripts, path
        assert any(s == "/static/js/pwa.js" for s in scripts)
        assert any(link.get("rel") == "manifest" for link in page.all("link"))


def test_every_form_control_has_a_label(logged_in):
    for path in PAGES:
        page = parse(logged_in.get(path).get_data(as_text=True))
        labelled = page.label_for
        for tag in ("input", "select", "textarea"):
            for attrs in page.all(tag):
                if attrs.get("type") in ("hidden", "radio", "checkbox"):
                    continue  # radios and checkboxes sit inside their <label>
                assert attrs.get("id") in labelled or attrs.get("aria-label"), (path, attrs)


def test_everything_a_page_loads_is_on_the_device(logged_in):
    seen: set[str] = set()
    for path in PAGES:
        page = parse(logged_in.get(path).get_data(as_text=True))
        seen.update(u for u in page.urls if not u.startswith("#"))
    sw = logged_in.get("/sw.js").get_data(as_text=True)
    shell = re.search(r"const SHELL_URLS = \[(.*?)\];", sw, re.DOTALL).group(1)
    seen.update(re.findall(r'"(/[^"]*)"', shell))
    seen.update(u["src"] for u in json.loads(logged_in.get("/manifest.webmanifest").data)["icons"])
    for url in sorted(seen):
        if url.startswith("/api/"):
            continue  # exports: data, tested with the API
        assert url.startswith("/") and not url.startswith("//"), url
        response = logged_in.get(url)
        assert response.status_code == 200, url
        response.close()


def test_no_file_loads_anything_from_another_host():
    allowed = {"http://www.w3.org/2000/svg"}  # the SVG namespace name, not a download
    for path in [*STATIC.rglob("*.js"), *STATIC.rglob("*.css"), *TEMPLATES.rglob("*.html")]:
        for url in re.findall(r"(?:https?:)?//[\w.-]+\.[a-z]{2,}[^\s\"'<>)]*", path.read_text()):
            assert url in allowed, f"{path.name} loads {url}"


def test_scripts_insert_text_never_html():
    """Names, pattern texts and insights are people's text: only text nodes may show them."""
    for path in STATIC.rglob("*.js"):
        source = path.read_text()
        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
            assert sink not in source, f"{path.name} uses {sink}"


def test_the_owners_name_is_escaped(client, data_dir):
    claim_as(client, data_dir, name='<script>alert("x")</script>')
    for path in PAGES:
        html = client.get(path).get_data(as_text=True)
        assert '<script>alert("x")' not in html
        assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html


def test_summary_address_must_look_like_a_session_id(logged_in):
    assert logged_in.get("/sessions/not%20an%20id").status_code == 404
    assert logged_in.get("/sessions/" + "a" * 65).status_code == 404
    # the shell does not depend on the session: one cached copy serves every summary offline
    # (the logout form's CSRF token carries the second it was signed: not part of the shell)
    def shell(path: str) -> str:
        return re.sub(r'name="csrf_token" value="[^"]+"', "", logged_in.get(path).get_data(
            as_text=True))

    assert shell("/sessions/_") == shell("/sessions/abc")


def test_manifest_makes_the_app_installable(logged_in):
    response = logged_in.get("/manifest.webmanifest")
    assert response.mimetype == "application/manifest+json"
    manifest = response.get_json(force=True)
    assert manifest["display"] == "standalone"
    assert manifest["name"] and manifest["short_name"]
    assert logged_in.get(manifest["start_url"]).status_code == 200
    home = logged_in.get("/").get_data(as_text=True)
    assert f'name="theme-color" content="{manifest["theme_color"]}"' in home
    sizes = set()
    for icon in manifest["icons"]:
        image = Image.open(io.BytesIO(logged_in.get(icon["src"]).data))
        assert image.format == "PNG"
        width, height = image.size
        assert icon["sizes"] == f"{width}x{height}", icon["src"]
        sizes.add((width, icon["purpose"]))
    assert {(192, "any"), (512, "any"), (512, "maskable")} <= sizes


def test_service_worker_is_served_from_the_root_uncached(logged_in):
    response = logged_in.get("/sw.js")
    assert response.status_code == 200
    assert response.mimetype == "text/javascript"
    assert response.headers["Service-Worker-Allowed"] == "/"
    assert "no-cache" in response.headers["Cache-Control"]
    logged_in.post("/logout", data={"csrf_token": token_from(logged_in, "/")})
    assert logged_in.get("/sw.js").status_code == 200  # code, not data: no login needed


def test_no_address_serves_camera_images(app, logged_in):
    words = re.compile(r"frame|camera|snapshot|video|stream|jpe?g|mjpe?g|image", re.IGNORECASE)
    for rule in app.url_map.iter_rules():
        assert not words.search(rule.rule), rule.rule
    assert not [p for p in STATIC.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".mp4",
                                                                        ".mjpeg", ".webm")]
    for rule in app.url_map.iter_rules():
        if "GET" in rule.methods and not rule.arguments and rule.rule != "/api/live":
            response = logged_in.get(rule.rule)
            assert not response.mimetype.startswith(("image/jpeg", "video/")), rule.rule
            response.close()


def test_service_worker_saves_every_script_style_and_page_for_offline_use(logged_in):
    sw = logged_in.get("/sw.js").get_data(as_text=True)
    shell = set(re.findall(r'"(/[^"]*)"', re.search(r"const SHELL_URLS = \[(.*?)\];", sw,
                                                        re.DOTALL).group(1)))
    shell.add("/sessions/_")  # SUMMARY_SHELL, named by a constant
    files = {f"/static/{p.relative_to(STATIC)}" for p in STATIC.rglob("*")
             if p.suffix in (".js", ".css") and p.name != "sw.js"}
    assert files <= shell, files - shell
    assert {path for path in PAGES if path != "/sessions/abc123"} <= shell
