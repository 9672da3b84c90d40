"""The ``breathe`` command keeps its promises: help everywhere, documented, honest exit codes.

Exit codes (README, DESIGN.md): 0 ok, 1 failure (and "not available yet"), 2 bad input.
The help and README checks walk the real command tree, so a new command without help text or
without a line in README's Commands section fails here (STYLE.md item 11).
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result
from expected import BUILT_IN_PHASES

from common.logs import setup_logging
from device.cli import main

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
SHIPPED_CONFIG = ROOT / "firmware_config" / "device.toml"
BREATHE_BIN = ROOT / ".venv" / "bin" / "breathe"



# --- fixtures ---------------------------------------------------------------------------------

@pytest.fixture(autouse=True)
def _clean_env(clean_env) -> None:
    """Every test here runs without BREATHE* variables from the outer shell."""


@pytest.fixture
def cli(data_dir: Path):
    """Run ``breathe ARGS...`` in process with a fresh data dir; returns click's Result."""
    runner = CliRunner()

    def invoke(*args: str) -> Result:
        return runner.invoke(main, list(args), catch_exceptions=False)

    return invoke


@pytest.fixture
def misspelled_config(tmp_path: Path) -> Path:
    """A config with one good key and two misspelled ones."""
    path = tmp_path / "typo.toml"
    path.write_text('[device]\nname = "kitchen"\n\n[mqtt]\nhots = "broker.local"\n'
                    '\n[web]\nprot = 8080\n', encoding="utf-8")
    return path


# --- the command tree -------------------------------------------------------------------------

def _walk(command: click.Command, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    yield path
    if isinstance(command, click.Group):
        for name, sub in sorted(command.commands.items()):
            yield from _walk(sub, (*path, name))


def _command_at(path: tuple[str, ...]) -> click.Command:
    command: click.Command = main
    for name in path:
        assert isinstance(command, click.Group)
        command = command.commands[name]
    return command


COMMAND_PATHS = list(_walk(main))
SUBCOMMAND_PATHS = [p for p in COMMAND_PATHS if p]
TOP_LEVEL = sorted(main.commands)


def _label(path: tuple[str, ...]) -> str:
    return " ".join(("breathe", *path))


def test_the_tree_has_every_command_issue_2_asks_for() -> None:
    assert {"run", "analyze", "session", "patterns", "config", "relay", "bench"} <= set(TOP_LEVEL)
    assert {"list", "show", "add", "delete"} <= set(_command_at(("patterns",)).commands)
    assert {"check", "show"} <= set(_command_at(("config",)).commands)


@pytest.mark.parametrize("path", COMMAND_PATHS, ids=_label)
def test_every_command_has_help_text_and_help_exits_0(path: tuple[str, ...]) -> None:
    command = _command_at(path)
    assert (command.help or "").strip(), f"'{_label(path)}' has no help text"
    result = CliRunner().invoke(main, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Usage: ")
    # the help page shows the command's own first line, not just click's boilerplate
    first_line = command.help.strip().splitlines()[0]
    assert " ".join(first_line.split()[:4]) in " ".join(result.output.split())


@pytest.mark.parametrize("path", COMMAND_PATHS, ids=_label)
def test_every_option_says_what_it_does(path: tuple[str, ...]) -> None:
    command = _command_at(path)
    silent = [p.opts[0] for p in command.params
              if isinstance(p, click.Option) and not (p.help or "").strip()]
    assert not silent, f"'{_label(path)}' options without help: {silent}"


@pytest.mark.parametrize("path", [p for p in SUBCOMMAND_PATHS if len(p) == 1], ids=_label)
def test_short_help_alias_works_everywhere(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(main, [*path, "-h"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Usage: ")


def _readme_commands() -> str:
    text = README.read_text(encoding="utf-8")
    match = re.search(r"^## Commands\n(.*?)(?=^## |\Z)", text, flags=re.S | re.M)
    assert match, "README.md has no '## Commands' section"
    return match.group(1)


def _documented(path: tuple[str, ...], section: str) -> bool:
    """A top-level command as ``breathe NAME``; a subcommand as a word on a ``breathe GROUP``
    line (README writes ``breathe patterns show ID | add FILE.json | delete ID``)."""
    group, rest = path[0], path[1:]
    lines = [line for line in section.splitlines()
             if re.search(rf"\bbreathe {re.escape(group)}\b", line)]
    return bool(lines) and all(
        any(re.search(rf"(?<![-\w]){re.escape(word)}\b", line) for line in lines)
        for word in rest
    )


@pytest.mark.parametrize("path", SUBCOMMAND_PATHS, ids=_label)
def test_every_command_is_in_the_readme_commands_section(path: tuple[str, ...]) -> None:
    if _documented(path, _readme_commands()):
        return
    pytest.fail(f"'{_label(path)}' is not mentioned in README.md's Commands section")


# --- exit codes -------------------------------------------------------------------------------

def test_ok_is_0(cli) -> None:
    assert cli("patterns", "list").exit_code == 0
    assert cli("config", "check", str(SHIPPED_CONFIG)).exit_code == 0


@pytest.mark.parametrize("args", [
    ("nosuch",),
    ("--nosuch",),
    ("patterns", "nosuch"),
    ("patterns", "list", "--nosuch"),
    ("patterns", "show"),  # missing ID
    ("run", "--minutes", "0.1"),  # below the allowed 0.5
    ("run", "--minutes", "ten"),
    ("analyze", "a.mp4", "--backend", "nosuch"),
], ids=" ".join)
def test_usage_errors_are_bad_input(cli, args: tuple[str, ...]) -> None:
    result = cli(*args)
    assert result.exit_code == 2, result.output
    assert "Error:" in result.stderr and "Usage:" in result.stderr


def test_unknown_command_says_which(cli) -> None:
    result = cli("sesion")
    assert result.exit_code == 2
    assert "No such command 'sesion'" in result.stderr


def test_misspelled_config_key_is_bad_input_naming_the_key(cli, misspelled_config: Path) -> None:
    result = cli("config", "check", str(misspelled_config))
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    # every problem, one per line, as FILE: section.key: message (got X; allowed Y)
    assert len(lines) == 2, result.output
    mqtt = next(line for line in lines if "mqtt.hots" in line)
    assert mqtt.startswith(f"{misspelled_config}: mqtt.hots: ")
    assert "'host'" in mqtt and "got \"broker.local\"" in mqtt and "allowed" in mqtt
    assert any(line.startswith(f"{misspelled_config}: web.prot: ") for line in lines)
    assert "device.name" not in result.output


def test_config_given_with_the_global_option_is_checked_too(cli, misspelled_config) -> None:
    result = cli("--config", str(misspelled_config), "config", "check")
    assert result.exit_code == 2
    assert "mqtt.hots" in result.output


def test_unknown_pattern_id_is_bad_input_listing_the_known_ones(cli) -> None:
    result = cli("patterns", "show", "nosuch")
    assert result.exit_code == 2, result.output
    assert "'nosuch'" in result.stderr
    for pattern_id in BUILT_IN_PHASES:
        assert pattern_id in result.stderr


def test_analyze_on_a_missing_file_is_bad_input(cli, tmp_path: Path) -> None:
    missing = tmp_path / "nothere.mp4"
    result = cli("analyze", str(missing))
    assert result.exit_code == 2, result.output
    assert str(missing) in result.stderr
    assert "Traceback" not in result.output


@pytest.mark.timeout(20)  # if the check moved after pacing starts, this would pace forever
def test_run_with_an_unknown_pattern_stops_before_pacing(cli) -> None:
    result = cli("run", "--pattern", "nosuch", "--no-camera")
    assert result.exit_code == 2, result.output
    assert "'nosuch'" in result.stderr
    for pattern_id in BUILT_IN_PHASES:
        assert pattern_id in result.stderr
    assert "Ctrl-C to stop" not in result.output  # the line printed when pacing begins
    assert "cycle" not in result.stdout


# --- patterns and config, the "done when" lines of issue 2 --------------------------------------

def test_patterns_list_json_has_the_seven_built_ins_with_their_phases(cli, data_dir) -> None:
    result = cli("patterns", "list", "--json")
    assert result.exit_code == 0, result.output
    listed = {p["id"]: p for p in json.loads(result.stdout)}
    assert set(listed) == set(BUILT_IN_PHASES)
    for pattern_id, phases in BUILT_IN_PHASES.items():
        p = listed[pattern_id]
        assert (p["inhale"], p["hold_in"], p["exhale"], p["hold_out"]) == phases, pattern_id
        assert p["cycle_s"] == sum(phases)
        assert p["built_in"] is True
        assert p["name"].strip()
    assert (data_dir / "breathe.db").is_file()  # the test data dir, never the home directory


def test_patterns_list_table_shows_every_built_in(cli) -> None:
    result = cli("patterns", "list")
    assert result.exit_code == 0
    rows = {line.split()[0]: line for line in result.stdout.splitlines()[1:] if line.strip()}
    assert set(rows) == set(BUILT_IN_PHASES)
    for pattern_id, phases in BUILT_IN_PHASES.items():
        assert f" {'-'.join(f'{s:g}' for s in phases)} " in rows[pattern_id], rows[pattern_id]


def test_shipped_config_checks_ok(cli) -> None:
    result = cli("config", "check", str(SHIPPED_CONFIG))
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"ok: {SHIPPED_CONFIG}"


# --- run --------------------------------------------------------------------------------------

def test_run_help_documents_its_options(cli) -> None:
    result = cli("run", "--help")
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    for option in ("--demo", "--pattern", "--minutes", "--no-camera"):
        assert re.search(rf"{option}\b", text), option
    assert "demo camera" in text
    assert "default: coherent" in text  # the pattern paced when none is given
    assert "Ctrl-C" in text


# --- logging ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("flags", "level"), [
    ((), logging.WARNING),
    (("-v",), logging.INFO),
    (("-vv",), logging.DEBUG),
    (("-v", "-v"), logging.DEBUG),
])
def test_v_raises_verbosity(cli, monkeypatch, flags: tuple[str, ...], level: int) -> None:
    monkeypatch.setenv("BREATHE__DEVICE__LOG_LEVEL", "WARNING")
    result = cli(*flags, "config", "check")
    assert result.exit_code == 0, result.output
    assert logging.getLogger("breathe.test").getEffectiveLevel() == level


@pytest.mark.parametrize(("configured", "level"), [
    ("ERROR", logging.ERROR),
    ("debug", logging.DEBUG),
    (None, logging.INFO),  # the shipped default
])
def test_without_v_the_configured_level_is_used(cli, monkeypatch, configured, level) -> None:
    if configured is not None:
        monkeypatch.setenv("BREATHE__DEVICE__LOG_LEVEL", configured)
    assert cli("config", "check").exit_code == 0
    assert logging.getLogger().level == level


def test_v_never_makes_the_log_quieter_than_the_config(cli, monkeypatch) -> None:
    monkeypatch.setenv("BREATHE__DEVICE__LOG_LEVEL", "DEBUG")
    assert cli("-v", "config", "check").exit_code == 0
    assert logging.getLogger().level == logging.DEBUG


def _logged(*, msg: str, args: tuple = (), exc: BaseException | None = None) -> str:
    """What the configured ``breathe`` logging writes for one warning record."""
    root = logging.getLogger()
    root.handlers.clear()  # as at process start; _restore_logging puts pytest's handlers back
    setup_logging(verbose=0)
    (handler,) = root.handlers
    out = io.StringIO()
    handler.setStream(out)
    log = logging.getLogger("breathe.test")
    if exc is None:
        log.warning(msg, *args)
    else:
        try:
            raise exc
        except type(exc):
            log.exception(msg, *args)
    return out.getvalue()


def test_log_lines_use_the_one_format() -> None:
    line = _logged(msg="hello %s", args=("there",)).strip()
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} WARNING breathe\.test: hello there",
                        line), line


@pytest.mark.parametrize(("msg", "args"), [
    ("mqtt login password=hunter2 user=bob", ()),
    ("mqtt login %s", ("password=hunter2",)),
    ("mqtt login password: hunter2", ()),
    ("relay PASSWORD = hunter2", ()),
    ("wallet private_key=hunter2", ()),
    ("api token=hunter2", ()),
])
def test_secrets_never_reach_the_log(msg: str, args: tuple) -> None:
    output = _logged(msg=msg, args=args)
    assert "hunter2" not in output
    assert "***" in output
    assert (msg % args).split()[0] in output  # the rest of the line is still logged


@pytest.mark.parametrize("kwargs", [
    pytest.param({"msg": "settings %s", "args": ({"password": "hunter2"},)}, id="dict-repr"),
    pytest.param({"msg": "connecting to %s", "args": ("mqtts://bob:hunter2@broker:8883",)},
                 id="url-credentials"),
    pytest.param({"msg": "login failed", "exc": ValueError("password=hunter2")}, id="traceback"),
])
def test_secrets_in_other_shapes_never_reach_the_log(kwargs: dict) -> None:
    assert "hunter2" not in _logged(**kwargs)


# --- the installed console script, end to end ---------------------------------------------------

def _breathe(*args: str, data_dir: Path,
             extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BREATHE")}
    env["BREATHE_DATA_DIR"] = str(data_dir)
    env.update(extra_env or {})
    return subprocess.run([str(BREATHE_BIN), *args], capture_output=True, text=True, env=env,
                          timeout=60, cwd=ROOT)


@pytest.mark.skipif(not BREATHE_BIN.exists(), reason="no .venv/bin/breathe: run scripts/setup")
def test_console_script_lists_patterns_and_exits_0(data_dir: Path) -> None:
    done = _breathe("patterns", "list", "--json", data_dir=data_dir)
    assert done.returncode == 0, done.stderr
    assert {p["id"] for p in json.loads(done.stdout)} == set(BUILT_IN_PHASES)


@pytest.mark.skipif(not BREATHE_BIN.exists(), reason="no .venv/bin/breathe: run scripts/setup")
def test_console_script_exit_codes(data_dir: Path, misspelled_config: Path) -> None:
    bad = _breathe("config", "check", str(misspelled_config), data_dir=data_dir)
    assert bad.returncode == 2, bad.stdout + bad.stderr
    assert "mqtt.hots" in bad.stdout
    # nothing listens on port 1: a failure (exit 1), not bad input
    unreachable = _breathe("relay", "cmd", "kitchen", "ping", data_dir=data_dir,
                           extra_env={"BREATHE__RELAY__MQTT__PORT": "1"})
    assert unreachable.returncode == 1, unreachable.stderr
    assert "cannot reach the MQTT broker at localhost:1" in unreachable.stderr
