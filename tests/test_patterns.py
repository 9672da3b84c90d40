"""Breathing patterns: built-ins, the validation table, and the ``breathe patterns`` CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from expected import BUILT_IN_PHASES

from common.errors import BadInput
from wire.patterns import BUILT_INS, Pattern, builtin, parse_pattern

EXPECTED_BUILT_INS = BUILT_IN_PHASES


def test_the_seven_built_ins_have_the_published_phases() -> None:
    got = {pid: tuple(s for _, s in p.phases) for pid, p in BUILT_INS.items()}
    assert got == EXPECTED_BUILT_INS


@pytest.mark.parametrize("pattern_id", list(EXPECTED_BUILT_INS))
def test_built_ins_have_words_to_choose_by(pattern_id: str) -> None:
    pattern = builtin(pattern_id)
    assert len(pattern.description) > 40
    assert pattern.benefits and all(len(b) > 10 for b in pattern.benefits)


def test_coherent_breathing_is_about_five_and_a_half_breaths_a_minute() -> None:
    assert builtin("coherent").breaths_per_minute == pytest.approx(60 / 11)
    assert builtin("coherent").label == "5.5-0-5.5-0"
    assert builtin("relaxation").cycle_s == 19


def test_unknown_built_in_names_the_ones_that_exist() -> None:
    with pytest.raises(BadInput, match="box, relaxation"):
        builtin("boxx")


EXPECTED_PHASE_KEYS = ("inhale", "hold_in", "exhale", "hold_out")


def _base(**changes: object) -> dict[str, object]:
    data: dict[str, object] = {"name": "Calm", "inhale": 4, "exhale": 6}
    data.update(changes)
    return {k: v for k, v in data.items() if v is not ...}


GOOD = [
    pytest.param(_base(), id="minimal"),
    pytest.param(_base(inhale=1, exhale=1), id="shortest breaths"),
    pytest.param(_base(inhale=30, exhale=30, hold_in=30, hold_out=30), id="cycle exactly 120"),
    pytest.param(_base(inhale=4.25, exhale=5.75, hold_in=0.5), id="quarter seconds"),
    pytest.param(_base(hold_in=60, inhale=30, exhale=30), id="longest hold"),
    pytest.param(_base(name="x" * 50), id="name 50 chars"),
    pytest.param(_base(name="Calme · 呼吸 ✓"), id="unicode name"),
    pytest.param(_base(description="Line one.\nLine two.", benefits=["Slow", "Easy"]), id="words"),
]


@pytest.mark.parametrize("data", GOOD)
def test_good_patterns_are_accepted(data: dict[str, object]) -> None:
    pattern = parse_pattern(data)
    assert pattern.name == str(data["name"]).strip()
    assert pattern.cycle_s == sum(float(data.get(k, 0)) for k in EXPECTED_PHASE_KEYS)


BAD = [
    # (input, field named first in the message, a fragment of the message)
    pytest.param(_base(inhale=0.5), "inhale", "at least 1 s", id="inhale too short"),
    pytest.param(_base(exhale=30.25), "exhale", "at most 30 s", id="exhale too long"),
    pytest.param(_base(inhale=4.1), "inhale", "multiple of 0.25", id="off the grid"),
    pytest.param(_base(hold_in=-1), "hold_in", "at least 0 s", id="negative hold"),
    pytest.param(_base(hold_out=60.25), "hold_out", "at most 60 s", id="hold too long"),
    pytest.param(_base(inhale="4"), "inhale", "number", id="string seconds"),
    pytest.param(_base(exhale=True), "exhale", "number", id="bool seconds"),
    pytest.param(_base(inhale=float("nan")), "inhale", "number", id="nan"),
    pytest.param(_base(exhale=...), "exhale", "required", id="missing exhale"),
    pytest.param(_base(name=...), "name", "required", id="missing name"),
    pytest.param(_base(name="   "), "name", "empty", id="blank name"),
    pytest.param(_base(name="x" * 51), "name", "too long", id="name 51 chars"),
    pytest.param(_base(name="bell\x07"), "name", "control", id="control char"),
    pytest.param(_base(name="tab\tname"), "name", "control", id="tab in name"),
    pytest.param(_base(name=5), "name", "string", id="name not text"),
    pytest.param(
        _base(inhale=30, exhale=30, hold_in=30, hold_out=30.25), "cycle", "too long", id="cycle"
    ),
    pytest.param(_base(benefits=["ok", " "]), "benefits[1]", "empty", id="blank benefit"),
    pytest.param(_base(benefits=["b"] * 9), "benefits", "too many", id="nine benefits"),
    pytest.param(_base(description="x" * 501), "description", "too long", id="long description"),
    pytest.param(_base(built_in=True), "built_in", "unknown field", id="extra field"),
]


@pytest.mark.parametrize(("data", "field", "fragment"), BAD)
def test_bad_patterns_name_the_field(data: dict[str, object], field: str, fragment: str) -> None:
    with pytest.raises(BadInput) as caught:
        parse_pattern(data, source="calm.json")
    message = str(caught.value)
    assert message.startswith(f"calm.json: {field}: ")
    assert fragment in message
    assert "(got " in message and "; allowed " in message


def test_every_problem_is_reported_once_per_line() -> None:
    with pytest.raises(BadInput) as caught:
        parse_pattern({"name": "", "inhale": 0, "exhale": 31, "hold_in": 0.1})
    lines = str(caught.value).splitlines()
    assert [line.split(":")[0] for line in lines] == ["name", "inhale", "hold_in", "exhale"]


def test_a_pattern_file_must_hold_an_object() -> None:
    with pytest.raises(BadInput, match=r"^pattern: must be a JSON object \(got list"):
        parse_pattern([4, 4, 4, 4])


def test_name_is_stripped_and_patterns_are_immutable() -> None:
    pattern = parse_pattern(_base(name="  Calm  "))
    assert pattern.name == "Calm"
    with pytest.raises(ValueError):
        pattern.inhale = 5  # type: ignore[misc]


# --- the CLI -------------------------------------------------------------------------------


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Runs ``breathe ...`` against a fresh data dir; returns (exit code, stdout, stderr)."""
    from device.cli import main

    monkeypatch.setenv("BREATHE_DATA_DIR", str(tmp_path / "data"))
    runner = CliRunner()

    def run(*args: str) -> tuple[int, str, str]:
        result = runner.invoke(main, list(args), catch_exceptions=False)
        return result.exit_code, result.stdout, result.stderr

    return run


def _write(tmp_path: Path, data: object, name: str = "p.json") -> str:
    path = tmp_path / name
    path.write_text(json.dumps(data), encoding="utf-8")
    return str(path)


def test_cli_list_json_has_the_seven_built_ins(cli, tmp_path: Path) -> None:
    code, out, _ = cli("patterns", "list", "--json")
    assert code == 0
    rows = json.loads(out)
    got = {r["id"]: (r["inhale"], r["hold_in"], r["exhale"], r["hold_out"]) for r in rows}
    assert got == EXPECTED_BUILT_INS
    assert all(r["built_in"] is True for r in rows)
    assert {r["id"]: r["cycle_s"] for r in rows}["relaxation"] == 19
    assert (tmp_path / "data" / "breathe.db").exists()


def test_cli_list_text_shows_phases(cli) -> None:
    code, out, _ = cli("patterns", "list")
    assert code == 0
    line = next(line for line in out.splitlines() if line.startswith("coherent"))
    assert "Coherent breathing" in line and "5.5-0-5.5-0" in line and "built-in" in line


def test_cli_show(cli) -> None:
    code, out, _ = cli("patterns", "show", "relaxation")
    assert code == 0
    assert "4-7-8 relaxation" in out and "exhale 8 s" in out and "Benefits:" in out
    code, out, _ = cli("patterns", "show", "box", "--json")
    assert json.loads(out)["benefits"] == list(builtin("box").benefits)


def test_cli_add_then_list_show_and_delete(cli, tmp_path: Path) -> None:
    file = _write(tmp_path, {"name": "Calm 4-6", "inhale": 4, "exhale": 6, "benefits": ["Slow"]})
    code, out, _ = cli("patterns", "add", file)
    assert code == 0 and "my-calm-4-6" in out
    rows = json.loads(cli("patterns", "list", "--json")[1])
    assert rows[-1] == {
        "id": "my-calm-4-6", "name": "Calm 4-6", "inhale": 4.0, "hold_in": 0.0, "exhale": 6.0,
        "hold_out": 0.0, "cycle_s": 10.0, "built_in": False,
    }  # fmt: skip
    assert cli("patterns", "show", "my-calm-4-6")[0] == 0
    code, _, err = cli("patterns", "add", file)
    assert code == 2 and "name: already used" in err
    assert cli("patterns", "delete", "my-calm-4-6")[0] == 0
    assert cli("patterns", "show", "my-calm-4-6")[0] == 2


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ({"name": "Calm", "inhale": 0.5, "exhale": 4}, "inhale: must be at least 1 s"),
        ({"name": "Calm", "inhale": 4, "exhale": 4, "hold_out": 61}, "hold_out: must be at most"),
        ({"inhale": 4, "exhale": 4}, "name: required"),
        ({"name": "Box breathing", "inhale": 4, "exhale": 4}, "name: already used by a built-in"),
        ("{not json", "not valid JSON at line 1"),
    ],
)
def test_cli_add_refuses_bad_files_with_exit_2(cli, tmp_path: Path, content, fragment) -> None:
    if isinstance(content, str):
        file = tmp_path / "bad.json"
        file.write_text(content, encoding="utf-8")
    else:
        file = Path(_write(tmp_path, content))
    code, out, err = cli("patterns", "add", str(file))
    assert code == 2
    assert fragment in err
    assert len(json.loads(cli("patterns", "list", "--json")[1])) == 7  # nothing stored


def test_cli_add_missing_file_is_bad_input(cli, tmp_path: Path) -> None:
    code, _, err = cli("patterns", "add", str(tmp_path / "nope.json"))
    assert code == 2
    assert "nope.json: file not found" in err


def test_cli_delete_refuses_built_ins_and_unknown_ids(cli) -> None:
    code, _, err = cli("patterns", "delete", "box")
    assert code == 2 and "'box' is a built-in and cannot be deleted" in err
    code, _, err = cli("patterns", "delete", "nope")
    assert code == 2 and "no pattern with id 'nope'" in err
    assert cli("patterns", "show", "box")[0] == 0


def test_cli_data_dir_expands_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from device.cli import main

    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("BREATHE_DATA_DIR", "~/breathe-data")
    result = CliRunner().invoke(main, ["patterns", "list"])
    assert result.exit_code == 0
    assert (tmp_path / "breathe-data" / "breathe.db").exists()


def test_cli_takes_the_data_dir_from_the_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from device.cli import main

    monkeypatch.delenv("BREATHE_DATA_DIR", raising=False)
    config = tmp_path / "device.toml"
    config.write_text(f'[device]\ndata_dir = "{tmp_path / "from-config"}"\n', encoding="utf-8")
    result = CliRunner().invoke(main, ["--config", str(config), "patterns", "list", "--json"])
    assert result.exit_code == 0, result.stderr
    assert len(json.loads(result.stdout)) == len(EXPECTED_BUILT_INS)
    assert (tmp_path / "from-config" / "breathe.db").exists()


def test_cli_unwritable_data_dir_is_a_failure_not_bad_input(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from device.cli import main

    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("BREATHE_DATA_DIR", str(blocker / "data"))
    result = CliRunner().invoke(main, ["patterns", "list"])
    assert result.exit_code == 1
    assert "cannot open the database" in result.stderr


def test_pattern_model_round_trips_through_json() -> None:
    pattern = builtin("sleep")
    assert Pattern.model_validate_json(pattern.model_dump_json()) == pattern
