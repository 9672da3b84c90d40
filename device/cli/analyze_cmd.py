"""``breathe analyze VIDEO``: the live breath pipeline over a file."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from common.errors import require_extra
from device.breath.analyze import analyze_source, human_summary, open_video, plot_analysis
from device.breath.pipeline import BreathPipeline


@click.command("analyze")
@click.argument("video", type=click.Path(dir_okay=True, path_type=Path))
@click.option("--json", "json_out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write per-frame phase, rate and quality, breaths and a summary as JSON "
                   "('-' for stdout).")
@click.option("--plot", "plot_out", type=click.Path(dir_okay=False, path_type=Path),
              help="Draw displacement, phases and rate over time to this PNG.")
@click.option("--backend", type=click.Choice(["litert", "mediapipe"]), default=None,
              help="Landmark backend (default: vision.backend from the config).")
@click.pass_context
def analyze(ctx: click.Context, video: Path, json_out: Path | None, plot_out: Path | None,
            backend: str | None) -> None:
    """Measure breathing in VIDEO with the same causal pipeline the device runs live.

    Prints a summary; the value at time t uses only frames up to t.
    """
    from device.cli.context import settings as load_settings
    from device.vision.factory import backend_from_settings

    if plot_out is not None:
        require_extra("matplotlib", "plot", "--plot")
    settings = load_settings(ctx)
    if backend is not None:
        settings = settings.model_copy(update={"vision": settings.vision.model_copy(
            update={"backend": backend})})
    source = open_video(video)
    landmarks = backend_from_settings(settings.vision, whole_file=True)
    try:
        pipeline = BreathPipeline.from_settings(settings, source.stats.fps, landmarks,
                                                whole_file=True)
        total = getattr(source, "frame_count", None)
        show = sys.stderr.isatty() and json_out != Path("-")
        with click.progressbar(length=total or 0, label="analyzing", file=sys.stderr,
                               hidden=not show) as bar:
            result = analyze_source(source, pipeline, str(video), progress=bar.update)
    finally:
        source.close()
        landmarks.close()
    if json_out is not None:
        text = json.dumps(result.to_json(), indent=None, separators=(",", ":"))
        if str(json_out) == "-":
            click.echo(text)
        else:
            json_out.write_text(text + "\n")
    if plot_out is not None:
        plot_analysis(result, plot_out)
    click.echo(human_summary(result), err=str(json_out) == "-")


COMMANDS = [analyze]
