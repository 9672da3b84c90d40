"""``breathe bench``: benchmarks that print numbers (speed, memory, accuracy)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import click

DEFAULT_CACHE = Path("~/.cache/breathe/clips").expanduser()


@click.group("bench")
def bench() -> None:
    """Benchmarks: analyze throughput and memory, accuracy over synthetic videos."""


@bench.command("analyze")
@click.option("--video", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Video to time (default: a generated 60 s 640x480 30 fps clip).")
@click.option("--cache", type=click.Path(file_okay=False, path_type=Path),
              default=DEFAULT_CACHE, show_default=True, help="Where generated clips are kept.")
@click.option("--repeat", type=click.IntRange(1, 20), default=3, show_default=True,
              help="Runs of ours and the textbook method, interleaved; medians are shown.")
def bench_analyze(video: Path | None, cache: Path, repeat: int) -> None:
    """Frames/s of `breathe analyze` at 640x480 with decoding, per-stage cost, peak RSS, and
    the textbook optical-flow method's frames/s in the same run."""
    import statistics

    from device.bench.accuracy import clip_for
    from device.bench.throughput import cli_run, decode_fps, stage_costs, textbook_run
    from device.simulator.suites import free, quick_suite
    from device.vision.factory import make_backend

    if video is None:
        spec = quick_suite(0)[0].model_copy(
            update={"name": "bench_60s", "duration": 60.0,
                    "breathing": quick_suite(0)[0].breathing.model_copy(
                        update={"blocks": [free(60, 14)]})})
        video, _ = clip_for(spec, cache)
    click.echo(f"video: {video}")
    click.echo(f"decode only:           {decode_fps(video):8.0f} frames/s")
    backend = make_backend("litert")
    ours, textbook = [], []
    for _ in range(repeat):
        costs = stage_costs(video, backend)
        ours.append(costs["wall_fps"])
        textbook.append(textbook_run(video, backend)["wall_fps"])
    click.echo(f"ours vs textbook:      {statistics.median(ours):8.0f} vs "
               f"{statistics.median(textbook):.0f} frames/s (median of {repeat} interleaved "
               f"runs; ours {', '.join(f'{v:.0f}' for v in ours)}; textbook "
               f"{', '.join(f'{v:.0f}' for v in textbook)})")
    click.echo(f"pipeline in-process:   {costs['wall_fps']:8.0f} frames/s "
               f"({costs['frames']} frames, decoding in a second thread)")
    click.echo(f"  landmarks            {costs['landmarks_ms_per_frame']:8.3f} ms/frame "
               f"({costs['landmark_calls']} calls, {costs['landmarks_ms_per_call']:.1f} ms each)")
    click.echo(f"  ROI motion           {costs['motion_ms_per_frame']:8.3f} ms/frame")
    click.echo(f"  estimator            {costs['estimator_ms_per_frame']:8.3f} ms/frame")
    run = cli_run(video)
    click.echo(f"breathe analyze (CLI): {run['fps_including_startup']:8.0f} frames/s "
               f"including start-up ({run['wall_s']:.1f} s)")
    click.echo(f"peak RSS:              {run['peak_rss_mb']:8.0f} MB")


@bench.command("accuracy")
@click.option("--suite", type=click.Choice(["quick", "full", "recorded", "recorded-tune",
                                            "recorded-test"]),
              default="full", show_default=True,
              help="Synthetic suite, or 90 s windows driven by real respiration recordings "
                   "(recorded-tune: the four records tuned on; recorded-test: the four held "
                   "out).")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Suite seed: another seed gives other people, framings and irregularity.")
@click.option("--only", multiple=True, help="Only these scenarios (repeatable).")
@click.option("--data", type=click.Path(file_okay=False, path_type=Path),
              help="Folder of BIDMC *_Signals.csv records for the recorded suites "
                   "(default: $BREATHE_BIDMC_DIR, else ../shared/data/bidmc beside the repo).")
@click.option("--textbook", is_flag=True,
              help="Also score the textbook optical-flow method on the same clips.")
@click.option("--cache", type=click.Path(file_okay=False, path_type=Path),
              default=DEFAULT_CACHE, show_default=True, help="Where generated clips are kept.")
@click.option("--json", "json_out", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the table as JSON.")
def bench_accuracy(suite: str, seed: int, only: tuple[str, ...], data: Path | None,
                   textbook: bool, cache: Path, json_out: Path | None) -> None:
    """Rate error, phase agreement and breath F1 per scenario against exact ground truth."""
    import os

    from common.errors import BadInput, SourceError
    from device.bench.accuracy import (
        analyse_clip,
        analyse_textbook_clip,
        by_record,
        clip_for,
        format_table,
        score_clip,
    )
    from device.simulator.suites import SUITES
    from device.vision.factory import make_backend

    if data is not None:
        os.environ["BREATHE_BIDMC_DIR"] = str(data)
    try:
        specs = SUITES[suite](seed)
    except SourceError as exc:
        raise BadInput(str(exc)) from exc
    backend = make_backend("litert")
    tables: dict[str, dict[str, dict]] = {"breathe": {}}
    if textbook:
        tables["textbook"] = {}
    for spec in specs:
        if only and spec.name not in only:
            continue
        path, truth = clip_for(spec, cache / f"{suite}-{seed}")
        tables["breathe"][spec.name] = score_clip(truth, analyse_clip(path, backend))
        if textbook:
            tables["textbook"][spec.name] = score_clip(truth,
                                                       analyse_textbook_clip(path, backend))
        click.echo(f"scored {spec.name}", err=True)
    for method, rows in tables.items():
        if textbook:
            click.echo(f"\n== {method} ==")
        click.echo(format_table(rows))
        if suite.startswith("recorded") and rows:
            click.echo("\nper record (mean of its windows):")
            click.echo(format_table(by_record(rows), footer="MEDIAN over records"))
    if json_out is not None:
        clean = {m: {k: {c: (None if isinstance(v, float) and math.isnan(v) else v)
                         for c, v in r.items()} for k, r in rows.items()}
                 for m, rows in tables.items()}
        json_out.write_text(json.dumps(clean if textbook else clean["breathe"], indent=1))


@bench.command("live")
@click.option("--seconds", type=click.FloatRange(5, 600), default=40.0, show_default=True,
              help="How long the live session runs, real time.")
@click.option("--pattern", "pattern_id", default="box", show_default=True,
              help="Pattern the session paces and the demo person follows.")
@click.option("--hz", type=click.FloatRange(10, 1000), default=50.0, show_default=True,
              help="Engine step rate (the LED update rate under test).")
@click.option("--rss-seconds", type=click.FloatRange(0, 600), default=20.0, show_default=True,
              help="How long 'breathe run --demo' runs for the memory number (0: skip).")
@click.pass_context
def bench_live(ctx: click.Context, seconds: float, pattern_id: str, hz: float,
               rss_seconds: float) -> None:
    """Frame → published live state latency, LED loop jitter, `breathe run --demo` peak RSS."""
    from device.bench.live import demo_peak_rss, format_live, format_rss, measure_live
    from device.cli.context import settings as load_settings

    settings = load_settings(ctx)
    click.echo(f"running a {seconds:.0f} s live session on the demo person...", err=True)
    click.echo(format_live(measure_live(settings, pattern_id, seconds, hz)))
    if rss_seconds > 0:
        click.echo(f"running 'breathe run --demo' for {rss_seconds:.0f} s...", err=True)
        click.echo("")
        click.echo(format_rss(demo_peak_rss(rss_seconds, pattern_id)))


COMMANDS = [bench]
