"""Config: the shipped file, good and bad files, env overrides, and `breathe config`."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

from common.config import (
    CONFIG_ENV,
    DEFAULTS_LABEL,
    InvalidConfig,
    Settings,
    check_config,
    default_data_dir,
    field_docs,
    load_config,
    mask_secrets,
    mask_url,
)
from common.errors import ConfigError
from device.cli import main

SHIPPED = Path(__file__).resolve().parents[1] / "firmware_config" / "device.toml"


@pytest.fixture(autouse=True)
def _clean_env(clean_env) -> None:
    """Every test here runs without BREATHE* variables from the outer shell."""


@pytest.fixture
def write(tmp_path: Path):
    def _write(text: str, name: str = "device.toml") -> Path:
        path = tmp_path / name
        path.write_text(text)
        return path

    return _write


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def _leaves(data: dict, prefix: str = "") -> dict[str, object]:
    out: dict[str, object] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            out.update(_leaves(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


# --- the shipped file -----------------------------------------------------------------------


def test_shipped_file_is_valid_and_equals_the_model_defaults() -> None:
    assert check_config(SHIPPED, env={}) == []
    assert load_config(SHIPPED, env={}) == Settings()
    parsed = _leaves(tomllib.loads(SHIPPED.read_text()))
    defaults = _leaves(Settings().model_dump(mode="json"))
    # TOML has no null: unset optional keys are written as "".
    assert parsed == {k: "" if v is None else v for k, v in defaults.items()}


def test_shipped_file_lists_every_field_with_a_comment() -> None:
    parsed = _leaves(tomllib.loads(SHIPPED.read_text()))
    assert sorted(parsed) == sorted(field_docs())  # every field, nothing else
    lines = SHIPPED.read_text().splitlines()
    for i, line in enumerate(lines):
        if line and not line.startswith(("#", "[")):
            assert lines[i - 1].startswith("# "), f"no comment above line {i + 1}: {line}"


def test_shipped_file_is_what_show_defaults_prints(runner: CliRunner) -> None:
    result = runner.invoke(main, ["config", "show", "--defaults", "--comments"])
    assert result.exit_code == 0, result.output
    assert result.output == SHIPPED.read_text()


def test_every_field_is_documented_and_bounded() -> None:
    for key, (description, allowed) in field_docs().items():
        assert len(description) > 10, key
        assert allowed and "None" not in allowed, key

    def numbers(node: object) -> list[dict]:
        if isinstance(node, list):
            return [n for item in node for n in numbers(item)]
        if not isinstance(node, dict):
            return []
        own = [node] if node.get("type") in ("integer", "number") else []
        return own + [n for value in node.values() for n in numbers(value)]

    found = numbers(Settings.model_json_schema())
    assert len(found) > 20
    assert all("minimum" in n and "maximum" in n for n in found), found


# --- good files -----------------------------------------------------------------------------


def test_custom_file_is_loaded(write, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    cert, key = tmp_path / "web.pem", tmp_path / "web.key"
    cert.write_text("cert")
    key.write_text("key")
    path = write(f"""
[device]
id = "kitchen-01"
name = "Kitchen"
log_level = "debug"
[camera]
source = "opencv:1"
fps = 30
demo_pattern = "box"
[pacing]
led_pins = [12, 18]
haptic_pin = ""
button_pin = 27
[web]
port = 8443
tls_cert = "{cert}"
tls_key = "{key}"
[privacy]
retention = "forever"
[relay]
store_url = "postgresql://relay@db.internal/breathe"
""")
    settings = load_config(path, env={})
    assert settings.device.id == "kitchen-01"
    assert settings.device.log_level == "DEBUG"
    assert settings.camera.source == "opencv:1" and settings.camera.fps == 30
    assert settings.camera.demo_pattern == "box"
    assert settings.pacing.led_pins == [12, 18]
    assert settings.pacing.haptic_pin is None and settings.pacing.button_pin == 27
    assert settings.web.tls_cert == cert and settings.web.tls_key == key
    assert settings.privacy.retention_days is None
    assert settings.mqtt == Settings().mqtt  # sections left out keep their defaults
    assert settings.data_path == tmp_path / ".local/share/breathe"
    assert default_data_dir() == tmp_path / ".local/share/breathe"


def test_partial_file_keeps_other_defaults(write) -> None:
    settings = load_config(write("[mqtt]\nenabled = true\nhost = 'broker.lan'\n"), env={})
    assert settings.mqtt.enabled and settings.mqtt.host == "broker.lan"
    assert settings.mqtt.port == 1883 and settings.camera == Settings().camera


# --- bad files ------------------------------------------------------------------------------

BAD_VALUES = [
    ("[device]\nid = 'Kitchen 1'", "device.id", 'got "Kitchen 1"'),
    ("[device]\nlog_level = 'loud'", "device.log_level", "allowed one of DEBUG, INFO"),
    ("[device]\ndata_dir = ''", "device.data_dir", "must not be empty"),
    ("[camera]\nsource = 'webcam'", "camera.source", "opencv:N"),
    ("[camera]\nfps = 100", "camera.fps", "got 100; allowed a whole number 5..60"),
    ("[camera]\nwidth = 641", "camera.width", "allowed an even number 64..4096"),
    ("[camera]\nlores_width = 800", "camera.lores_width", "at most camera.width = 640"),
    ("[vision]\nbackend = 'tensorflow'", "vision.backend", "allowed one of litert, mediapipe"),
    ("[vision]\nthreads = 0", "vision.threads", "got 0; allowed a whole number 1..4"),
    ("[vision]\nbackend = 'mediapipe'\nmodel_variant = 'int8'", "vision.model_variant", "litert"),
    ("[breath]\nmax_rate_bpm = 90", "breath.max_rate_bpm", "got 90; allowed a number 20..60"),
    ("[pacing]\nled_pins = [18, 40]", "pacing.led_pins[1]", "BCM GPIO number 0..27"),
    ("[pacing]\nled_pins = []", "pacing.led_pins", "got []"),
    ("[pacing]\nhaptic_strength = 1.5", "pacing.haptic_strength", "allowed a number 0..1"),
    ("[pacing]\nled_update_hz = 30", "pacing.led_update_hz", "allowed a whole number 50..1000"),
    ("[pacing]\ngamma = 'high'", "pacing.gamma", 'got "high"'),
    ("[web]\nport = 70000", "web.port", "allowed a whole number 1..65535"),
    ("[web]\nhost = 'my laptop'", "web.host", "allowed a hostname or IP address"),
    ("[mqtt]\nkeepalive = 1", "mqtt.keepalive", "got 1; allowed a whole number 5..3600"),
    ("[mqtt]\ntls = 'yes please'", "mqtt.tls", "allowed true or false"),
    ("[privacy]\nretention = '2y'", "privacy.retention", "allowed one of 30d, 1y, forever"),
    ("[privacy]\nshare_metrics = 3", "privacy.share_metrics", "got 3"),
    ("[relay]\nstore_url = 'mysql://db/x'", "relay.store_url", "unsupported database scheme"),
    ("[relay.mqtt]\nport = 0", "relay.mqtt.port", "allowed a whole number 1..65535"),
    ("[relay.chain]\ncontract_address = '0x12'", "relay.chain.contract_address", "40 hex"),
    ("[relay.chain]\nchain_id = 0", "relay.chain.chain_id", "got 0"),
]


@pytest.mark.parametrize(("text", "key", "fragment"), BAD_VALUES)
def test_bad_value_names_file_and_key(write, text: str, key: str, fragment: str) -> None:
    path = write(text + "\n")
    problems = check_config(path, env={})
    assert len(problems) == 1, problems
    message = str(problems[0])
    assert message.startswith(f"{path}: {key}: "), message
    assert fragment in message
    assert "; allowed " in message


def test_every_section_has_a_bad_value_case() -> None:
    covered = {key.split(".")[0] for _, key, _ in BAD_VALUES}
    assert covered == set(Settings.model_fields)


def test_message_has_the_documented_shape(write) -> None:
    path = write("[camera]\nfps = 100\n")
    assert [str(p) for p in check_config(path, env={})] == [
        f"{path}: camera.fps: Input should be less than or equal to 60 "
        "(got 100; allowed a whole number 5..60)"
    ]


def test_every_problem_is_reported_at_once(write) -> None:
    path = write("[camera]\nfps = 1\n[web]\nport = 0\n[privacy]\nretention = 'week'\n")
    with pytest.raises(InvalidConfig) as caught:
        load_config(path, env={})
    keys = [p.key for p in caught.value.problems]
    assert keys == ["camera.fps", "web.port", "privacy.retention"]
    assert isinstance(caught.value, ConfigError)
    assert str(caught.value).count(str(path)) == 3


def test_typo_key_is_refused_with_a_suggestion(write) -> None:
    path = write("[mqtt]\nhots = 'broker.lan'\n")
    (problem,) = check_config(path, env={})
    assert str(problem).startswith(f"{path}: mqtt.hots: unknown key; did you mean 'host'?")
    assert 'got "broker.lan"' in str(problem) and "keepalive" in str(problem.allowed)


def test_unknown_section_is_refused(write) -> None:
    (problem,) = check_config(write("[mqqt]\nhost = 'x'\n"), env={})
    assert problem.key == "mqqt"
    assert "unknown section; did you mean 'mqtt'?" in problem.message


def test_toml_syntax_error_names_line_and_column(write) -> None:
    path = write("[device]\nname = 'ok'\nid = \n")
    (problem,) = check_config(path, env={})
    assert str(problem) == f"{path}: line 3, column 6: Invalid value"


def test_missing_file_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"
    (problem,) = check_config(path, env={})
    assert str(problem) == f"{path}: cannot read: No such file or directory"


@pytest.mark.parametrize(
    ("pacing", "key", "other"),
    [
        ("led_pins = [18]\nbutton_pin = 18", "pacing.button_pin", "pacing.led_pins[0]"),
        ("led_pins = [5, 6]\nhaptic_pin = 6", "pacing.haptic_pin", "pacing.led_pins[1]"),
        ("haptic_pin = 4\nbutton_pin = 4", "pacing.button_pin", "pacing.haptic_pin"),
        ("led_pins = [5, 6, 5]", "pacing.led_pins[2]", "pacing.led_pins[0]"),
    ],
)
def test_gpio_pin_collisions_are_refused(write, pacing: str, key: str, other: str) -> None:
    (problem,) = check_config(write(f"[pacing]\n{pacing}\n"), env={})
    assert problem.key == key
    assert f"is also {other}" in problem.message


@pytest.mark.parametrize(
    ("text", "key", "fragment"),
    [
        ("[pacing]\nhaptic_pin = ''\neyes_closed = true", "pacing.eyes_closed", "haptic_pin"),
        ("[web]\ntls_cert = '{file}'", "web.tls_key", "tls_cert is set but tls_key is empty"),
        ("[mqtt]\nca_file = '{file}'", "mqtt.ca_file", "tls is false"),
        ("[mqtt]\npassword_file = '{file}'", "mqtt.password_file", "needs a username"),
        ("[vision]\nmodel_variant = 'int8'", "vision.model_variant", "needs landmark_model"),
        ("[vision]\nbackend = 'mediapipe'\nlandmark_model = '{file}'", "vision.landmark_model",
         "only on the litert backend"),
    ],
)
def test_settings_that_need_each_other(write, tmp_path: Path, text: str, key: str,
                                       fragment: str) -> None:
    existing = tmp_path / "some.pem"
    existing.write_text("x")
    (problem,) = check_config(write(text.format(file=existing) + "\n"), env={})
    assert problem.key == key and fragment in problem.message


def test_files_named_in_the_config_must_exist(write, tmp_path: Path) -> None:
    key = tmp_path / "key.pem"
    key.write_text("x")
    path = write(f"[web]\ntls_cert = '/nonexistent/cert.pem'\ntls_key = '{tmp_path}'\n")
    assert [(p.key, p.message) for p in check_config(path, env={})] == [
        ("web.tls_cert", "no such file"), ("web.tls_key", "not a regular file")]
    assert Settings(web={"tls_cert": "/nonexistent/cert.pem", "tls_key": str(key)})  # unchecked


# --- environment ----------------------------------------------------------------------------


def test_env_overrides_file_and_parses_values(write) -> None:
    path = write("[mqtt]\nhost = 'from-file'\n[device]\nname = 'File'\n")
    env = {
        "BREATHE__MQTT__HOST": "broker.local",
        "BREATHE__MQTT__PORT": "1884",
        "BREATHE__PRIVACY__SHARE_METRICS": "true",
        "BREATHE__DEVICE__NAME": "123",
        "BREATHE__PACING__LED_PINS": "[5, 6]",
        "BREATHE__PACING__HAPTIC_PIN": "",
        "BREATHE__RELAY__CHAIN__CHAIN_ID": "11155111",
    }
    settings = load_config(path, env=env)
    assert settings.mqtt.host == "broker.local" and settings.mqtt.port == 1884
    assert settings.privacy.share_metrics is True
    assert settings.device.name == "123"  # a text field keeps numeric-looking text
    assert settings.pacing.led_pins == [5, 6] and settings.pacing.haptic_pin is None
    assert settings.relay.chain.chain_id == 11155111


def test_config_path_comes_from_breathe_config(write) -> None:
    path = write("[web]\nport = 9000\n")
    assert load_config(env={CONFIG_ENV: str(path)}).web.port == 9000
    assert load_config(env={}).web.port == 8080


def test_env_reads_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BREATHE__WEB__PORT", "9100")
    assert load_config().web.port == 9100


@pytest.mark.parametrize(
    ("var", "value", "key", "fragment"),
    [
        ("BREATHE__MQTT__PORT", "abc", "mqtt.port", 'got "abc"'),
        ("BREATHE__VISION__THREADS", "8", "vision.threads", "allowed a whole number 1..4"),
        ("BREATHE__MQTT__HOTS", "x", "mqtt.hots", "did you mean 'host'?"),
        ("BREATHE__PACING__BUTTON_PIN", "18", "pacing.button_pin", "pacing.led_pins[0]"),
    ],
)
def test_bad_env_value_names_the_variable(write, var: str, value: str, key: str,
                                          fragment: str) -> None:
    path = write("[mqtt]\nhost = 'ok'\n")
    (problem,) = check_config(path, env={var: value})
    assert str(problem).startswith(f"env {var}: {key}: ")
    assert fragment in str(problem)


def test_cross_field_problem_names_the_env_variable_involved(tmp_path: Path) -> None:
    cert = tmp_path / "c.pem"
    cert.write_text("x")
    (problem,) = check_config(env={"BREATHE__WEB__TLS_CERT": str(cert)})
    assert problem.source == "env BREATHE__WEB__TLS_CERT" and problem.key == "web.tls_key"


# --- secrets --------------------------------------------------------------------------------


def test_mask_secrets_hides_credentials() -> None:
    assert mask_url("postgresql://relay:hunter2@db/breathe") == "postgresql://relay:***@db/breathe"
    assert mask_url("https://mainnet.infura.io/v3/0123456789abcdef0123456789abcdef") == (
        "https://mainnet.infura.io/v3/***"
    )
    assert mask_url("https://rpc.example/x?apikey=s3cret") == "https://rpc.example/x?apikey=***"
    masked = mask_secrets({"a": {"password": "p", "api_token": "t", "password_file": "/f"}})
    assert masked == {"a": {"password": "***", "api_token": "***", "password_file": "/f"}}


def test_problem_never_echoes_a_password(write) -> None:
    (problem,) = check_config(write("[relay]\nstore_url = 'mysql://u:hunter2@db/x'\n"), env={})
    assert "hunter2" not in str(problem) and "u:***@db" in str(problem)


# --- CLI ------------------------------------------------------------------------------------


def test_cli_check_ok(runner: CliRunner) -> None:
    result = runner.invoke(main, ["config", "check", str(SHIPPED)])
    assert result.exit_code == 0, result.output
    assert result.output == f"ok: {SHIPPED}\n"


def test_cli_check_defaults_and_overrides(runner: CliRunner) -> None:
    result = runner.invoke(main, ["config", "check"], env={"BREATHE__WEB__PORT": "8081"})
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        f"ok: {DEFAULTS_LABEL}", "with environment overrides: BREATHE__WEB__PORT"
    ]


def test_cli_check_reports_every_problem_and_exits_2(runner: CliRunner, write) -> None:
    path = write("[mqtt]\nhots = 'x'\n[camera]\nfps = 2\n")
    result = runner.invoke(main, ["config", "check", str(path)])
    assert result.exit_code == 2
    assert result.output.splitlines() == [
        f"{path}: camera.fps: Input should be greater than or equal to 5 "
        "(got 2; allowed a whole number 5..60)",
        f"{path}: mqtt.hots: unknown key; did you mean 'host'? (got \"x\"; allowed ca_file, "
        "enabled, host, keepalive, password_file, port, telemetry_interval_s, tls, username)",
    ]


def test_cli_check_uses_the_main_config_option(runner: CliRunner, write) -> None:
    bad = write("[web]\nport = -1\n")
    result = runner.invoke(main, ["--config", str(bad), "config", "check"])
    assert result.exit_code == 2 and "web.port" in result.output
    result = runner.invoke(main, ["config", "check"], env={CONFIG_ENV: str(bad)})
    assert result.exit_code == 2 and f"{bad}: web.port" in result.output


def test_cli_show_masks_secrets(runner: CliRunner, write) -> None:
    path = write(
        "[relay]\nstore_url = 'postgresql://relay:hunter2@db/breathe'\n"
        "[relay.chain]\nrpc_url = 'https://rpc.example/v2/AbCdEfGh12IjKlMnOpQrStUv'\n"
    )
    as_json = runner.invoke(main, ["--config", str(path), "config", "show", "--json"])
    assert as_json.exit_code == 0, as_json.output
    shown = json.loads(as_json.output)
    assert shown["relay"]["store_url"] == "postgresql://relay:***@db/breathe"
    assert shown["relay"]["chain"]["rpc_url"] == "https://rpc.example/v2/***"
    as_toml = runner.invoke(main, ["--config", str(path), "config", "show"])
    assert as_toml.exit_code == 0
    assert "hunter2" not in as_toml.output and "AbCdEfGh" not in as_toml.output
    assert f"# effective configuration: {path}" in as_toml.output


def test_cli_show_output_is_a_valid_config(runner: CliRunner, write) -> None:
    env = {"BREATHE__MQTT__ENABLED": "true", "BREATHE__CAMERA__SOURCE": "demo"}
    result = runner.invoke(main, ["config", "show"], env=env)
    assert result.exit_code == 0, result.output
    assert "# environment overrides: BREATHE__CAMERA__SOURCE, BREATHE__MQTT__ENABLED" in (
        result.output)
    reloaded = load_config(write(result.output, "shown.toml"), env={})
    assert reloaded == load_config(env=env)


def test_cli_show_invalid_config_exits_2(runner: CliRunner, write) -> None:
    result = runner.invoke(main, ["--config", str(write("[camera]\nfps = 0\n")), "config", "show"])
    assert result.exit_code == 2 and "camera.fps" in result.output


@pytest.mark.parametrize("args", [["config"], ["config", "check"], ["config", "show"]])
def test_every_config_command_has_help(runner: CliRunner, args: list[str]) -> None:
    result = runner.invoke(main, [*args, "--help"])
    assert result.exit_code == 0
    assert "Usage:" in result.output and len(result.output.splitlines()) > 4
