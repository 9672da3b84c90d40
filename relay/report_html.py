"""The fleet report as one HTML file that reads offline: styles inline, charts drawn by
matplotlib as SVG and embedded as data URIs (no scripts, no fonts or files to fetch).

Every chart is an ``<img>`` with alt text that states what it shows, a caption, and the same
numbers as a table next to it, so nothing is only in a picture. Text from the store goes
through Jinja's autoescaping.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Callable
from typing import Any

import jinja2
from matplotlib import rc_context
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from relay.report import Report

# Okabe-Ito: told apart with any colour vision, dark enough on white.
BLUE, ORANGE, GREEN = "#0072B2", "#D55E00", "#009E73"
_RC = {"svg.fonttype": "path", "svg.hashsalt": "breathe-report", "font.size": 10,
       "axes.spines.top": False, "axes.spines.right": False}


def _svg(draw: Callable[[Axes], None], *, height: float) -> str:
    """A chart as a data URI; fonts become paths, so it looks the same everywhere."""
    with rc_context(_RC):
        fig = Figure(figsize=(7.0, height), layout="constrained")
        draw(fig.subplots())
        buffer = io.BytesIO()
        fig.savefig(buffer, format="svg", metadata={"Date": None})
    return "data:image/svg+xml;base64," + base64.b64encode(buffer.getvalue()).decode()


def _per_day_chart(report: Report) -> str:
    days = [d["day"][5:] for d in report.per_day]  # MM-DD
    done = [d["completed"] for d in report.per_day]
    other = [d["sessions"] - d["completed"] for d in report.per_day]

    def draw(ax: Axes) -> None:
        ax.bar(days, done, color=BLUE, label="completed")
        ax.bar(days, other, bottom=done, color=ORANGE, label="stopped or interrupted")
        ax.set_ylabel("sessions")
        ax.yaxis.get_major_locator().set_params(integer=True)
        ax.legend(loc="upper left", frameon=False)
        if len(days) > 14:
            ax.tick_params(axis="x", labelrotation=90, labelsize=7)

    return _svg(draw, height=3.0)


def _bars(labels: list[str], values: list[float], color: str, xlabel: str,
          xlim: tuple[float, float] | None = None, fmt: str = "{:g}") -> Callable[[Axes], None]:
    def draw(ax: Axes) -> None:
        bars = ax.barh(labels[::-1], values[::-1], color=color)  # the first on top
        ax.bar_label(bars, labels=[fmt.format(v) for v in values[::-1]], padding=3)
        ax.set_xlabel(xlabel)
        if xlim:
            ax.set_xlim(*xlim)
        else:
            ax.xaxis.get_major_locator().set_params(integer=True)
            ax.set_xlim(0, max(values, default=1) * 1.15 or 1)

    return draw


def _height(rows: int) -> float:
    return 1.0 + 0.35 * max(rows, 1)


def charts(report: Report) -> list[dict[str, Any]]:
    """Each chart: id, title, data URI, alt text, caption."""
    found = [{
        "id": "per-day", "title": "Sessions per day", "src": _per_day_chart(report),
        "alt": "Bar chart of sessions per day: " + "; ".join(
            f"{d['day']}: {d['sessions']} ({d['completed']} completed)"
            for d in report.per_day) + ".",
        "caption": f"Sessions per day (UTC), {report.first_day} to {report.last_day}; blue "
                   "completed, orange stopped or interrupted."}]
    patterns = report.patterns
    if patterns:
        labels = [p["label"] for p in patterns]
        counts = [p["sessions"] for p in patterns]
        found.append({
            "id": "popularity", "title": "Pattern popularity",
            "src": _svg(_bars(labels, counts, BLUE, "sessions"), height=_height(len(labels))),
            "alt": "Bar chart of sessions per pattern: " + "; ".join(
                f"{p['label']}: {p['sessions']}" for p in patterns) + ".",
            "caption": "Sessions per pattern, most used first."})
        scored = [p for p in patterns if p["median_adherence"] is not None]
        if scored:
            found.append({
                "id": "adherence", "title": "Median adherence per pattern",
                "src": _svg(_bars([p["label"] for p in scored],
                                  [100 * p["median_adherence"] for p in scored], GREEN,
                                  "median adherence (%)", (0, 110), "{:.0f}%"),
                            height=_height(len(scored))),
                "alt": "Bar chart of median adherence per pattern: " + "; ".join(
                    f"{p['label']}: {p['median_adherence']:.0%}" for p in scored) + ".",
                "caption": "Median share of measured time the breath followed the guide, "
                           "over sessions with a camera reading."})
    return found


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}"


def _num(value: Any, fmt: str = "{}") -> str:
    return "–" if value is None else fmt.format(value)


_TEMPLATE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Breathe fleet report {{ r.first_day }} to {{ r.last_day }}</title>
<style>
body { font: 16px/1.5 system-ui, sans-serif; color: #1a1a1a; background: #fff; margin: 0; }
main { max-width: 60rem; margin: 0 auto; padding: 1rem 1.25rem 3rem; }
h1 { font-size: 1.6rem; margin-bottom: .25rem; }
.note { color: #444; margin-top: 0; }
dl.figures { display: grid; grid-template-columns: repeat(auto-fit, minmax(10rem, 1fr));
  gap: .75rem; margin: 1.5rem 0; }
dl.figures div { border: 1px solid #ccc; border-radius: .5rem; padding: .5rem .75rem; }
dt { font-size: .85rem; color: #444; } dd { margin: 0; font-size: 1.4rem; font-weight: 600; }
figure { margin: 1.5rem 0 .5rem; } figure img { max-width: 100%; height: auto; }
figcaption { font-size: .9rem; color: #444; }
table { border-collapse: collapse; margin: .5rem 0 1.5rem; font-size: .95rem; }
caption { text-align: left; font-weight: 600; padding: .25rem 0; }
th, td { border-bottom: 1px solid #ddd; padding: .25rem .75rem .25rem 0; text-align: left; }
td.n, th.n { text-align: right; }
.offline { color: #a40000; font-weight: 600; }
footer { color: #555; font-size: .85rem; margin-top: 2rem; }
</style>
</head>
<body>
<main>
<h1>Breathe fleet report</h1>
<p class="note">{{ r.first_day }} to {{ r.last_day }} (UTC, {{ r.since_days }} days).
Only sessions and devices whose owner allows fleet analytics are counted; nothing here names a
person or a pattern's given name.</p>

<dl class="figures" aria-label="Key figures">
<div><dt>Sessions</dt><dd>{{ s.total }}</dd></div>
<div><dt>Completion rate</dt><dd>{{ pct(s.completion_rate) }}</dd></div>
<div><dt>Devices with sessions</dt><dd>{{ s.devices }}</dd></div>
<div><dt>Minutes practised</dt><dd>{{ '%g' % s.minutes }}</dd></div>
<div><dt>Devices offline</dt><dd>{{ h.offline }} of {{ h.devices }}</dd></div>
</dl>

<section aria-labelledby="usage">
<h2 id="usage">Usage</h2>
<p>{{ s.completed }} completed, {{ s.stopped }} stopped, {{ s.interrupted }} interrupted.</p>
{% for c in charts %}
<h3>{{ c.title }}</h3>
<figure id="chart-{{ c.id }}">
<img src="{{ c.src }}" alt="{{ c.alt }}" width="700">
<figcaption>{{ c.caption }}</figcaption>
</figure>
{% if c.id == "per-day" %}
<table>
<caption>Sessions per day (table)</caption>
<thead><tr><th scope="col">Day</th><th scope="col" class="n">Sessions</th>
<th scope="col" class="n">Completed</th></tr></thead>
<tbody>
{% for d in r.per_day %}<tr><th scope="row">{{ d.day }}</th><td class="n">{{ d.sessions }}</td>
<td class="n">{{ d.completed }}</td></tr>
{% endfor %}</tbody>
</table>
{% endif %}
{% endfor %}
{% if r.patterns %}
<table id="patterns">
<caption>Patterns (table)</caption>
<thead><tr><th scope="col">Pattern</th><th scope="col" class="n">Sessions</th>
<th scope="col" class="n">Completed</th><th scope="col" class="n">Median adherence</th>
</tr></thead>
<tbody>
{% for p in r.patterns %}<tr><th scope="row">{{ p.label }}</th>
<td class="n">{{ p.sessions }}</td><td class="n">{{ p.completed }}</td>
<td class="n">{{ pct(p.median_adherence) }}</td></tr>
{% endfor %}</tbody>
</table>
{% else %}
<p>No consenting sessions in this period.</p>
{% endif %}
</section>

<section aria-labelledby="health">
<h2 id="health">Device health</h2>
<p>{{ h.devices }} device(s) report health; {{ h.offline }} offline (disconnected, or silent for
more than {{ '%g' % h.offline_after_min }} minutes). Median camera rate
{{ num(h.median_fps, '{} fps') }}, median inference {{ num(h.median_inference_ms, '{} ms') }},
largest outbox {{ num(h.max_outbox_depth) }}, oldest unsent
{{ num(h.max_oldest_unsent_s, '{:g} s') }}.</p>
{% if h.rows %}
<table id="devices">
<caption>Devices (latest telemetry)</caption>
<thead><tr><th scope="col">Device</th><th scope="col">State</th>
<th scope="col" class="n">Last seen</th><th scope="col" class="n">Camera fps</th>
<th scope="col" class="n">Inference</th><th scope="col" class="n">Outbox</th>
<th scope="col" class="n">Oldest unsent</th></tr></thead>
<tbody>
{% for d in h.rows %}<tr><th scope="row">{{ d.device }}</th>
<td{% if d.offline %} class="offline"{% endif %}>{{ 'offline' if d.offline else 'online' }}</td>
<td class="n">{{ num(d.last_seen_s, '{:.0f} s ago') }}</td>
<td class="n">{{ num(d.fps, '{:.1f}') }}</td>
<td class="n">{{ num(d.inference_ms, '{:.1f} ms') }}</td>
<td class="n">{{ num(d.outbox_depth) }}</td>
<td class="n">{{ num(d.oldest_unsent_s, '{:.0f} s') }}</td>
</tr>
{% endfor %}</tbody>
</table>
{% endif %}
</section>
<footer>Generated {{ r.generated_at }} by <code>breathe relay report</code>.</footer>
</main>
</body>
</html>
"""

_ENV = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined,
                          trim_blocks=True, lstrip_blocks=True)


def render_html(report: Report) -> str:
    """The whole report as one self-contained HTML document."""
    return _ENV.from_string(_TEMPLATE).render(
        r=report, s=report.sessions, h=report.health, charts=charts(report), pct=_pct,
        num=_num)
