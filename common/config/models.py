"""Settings models: one small pydantic model per section, every field with a description + bounds.

These models are the single source of truth: the shipped ``firmware_config/device.toml``,
``breathe config check`` and every error message are derived from them. Cross-field checks raise
:func:`_conflict` errors, which ``problems`` turns into messages naming every key involved.

TOML has no null: an empty string means "not set" for every optional field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

DEFAULT_DATA_DIR = "~/.local/share/breathe"


def default_data_dir() -> Path:
    """The data directory used when the config names none, with ``~`` expanded."""
    return Path(DEFAULT_DATA_DIR).expanduser()


def _existing_file(value: Path, info: ValidationInfo) -> Path:
    """Expand ``~``; when loading for real (context check_files), the file must exist."""
    value = value.expanduser()
    if info.context and info.context.get("check_files"):
        if not value.exists():
            raise PydanticCustomError("file_missing", "no such file")
        if not value.is_file():
            raise PydanticCustomError("not_a_file", "not a regular file")
    return value


Pin = Annotated[int, Field(ge=0, le=27, description="BCM GPIO number")]
ExistingFile = Annotated[Path, AfterValidator(_existing_file)]
_PINS = "a BCM GPIO number 0..27"


def _conflict(field: str, message: str, got: Any, allowed: str, *also: str
              ) -> PydanticCustomError:
    """A cross-field error naming its field (appended to the key path) and the others involved."""
    return PydanticCustomError(
        "conflict", message, {"field": field, "got": got, "allowed": allowed, "also": also}
    )


def _nullable(annotation: Any) -> bool:
    return type(None) in get_args(annotation)


class Section(BaseModel):
    """Base of every section: unknown keys are refused, settings are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _empty_means_unset(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        fields = cls.model_fields
        return {
            k: None if v == "" and k in fields and _nullable(fields[k].annotation) else v
            for k, v in data.items()
        }


class DeviceSettings(Section):
    id: str = Field(
        "breathe-local", pattern=r"^[a-z0-9][a-z0-9-]{0,62}$",
        description="Device id: the MQTT topic breathe/v1/<id>/ and the broker username",
        json_schema_extra={"allowed": "1-63 lowercase letters, digits or '-', not starting "
                                      "with '-'"},
    )
    name: str = Field("Breathe", min_length=1, max_length=64,
                      description="Name shown in the web app and to the fleet")
    data_dir: Path = Field(
        Path(DEFAULT_DATA_DIR),
        description="Database and session files; ~ is expanded (systemd: /var/lib/breathe)",
        json_schema_extra={"allowed": "a directory path"},
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="Log level when no -v is given"
    )

    @field_validator("data_dir", mode="before")
    @classmethod
    def _not_empty(cls, value: Any) -> Any:
        if isinstance(value, str) and not value.strip():
            raise PydanticCustomError("empty", "must not be empty")
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value


class CameraSettings(Section):
    source: str = Field(
        "auto", pattern=r"^(auto|picamera2|demo|opencv:\d{1,2}|file:.+)$",
        description="Where frames come from: auto is the Pi camera when present, else USB camera 0",
        json_schema_extra={"allowed": "auto, picamera2, opencv:N (USB camera N), file:PATH "
                                      "(a video), demo (synthetic person)"},
    )
    width: int = Field(640, ge=64, le=4096, multiple_of=2, description="Main stream width, px")
    height: int = Field(480, ge=48, le=3072, multiple_of=2, description="Main stream height, px")
    fps: int = Field(15, ge=5, le=60, description="Frames per second asked of the camera")
    lores_width: int = Field(320, ge=64, le=1920, multiple_of=2,
                             description="Low-resolution stream width the models see, px")
    lores_height: int = Field(240, ge=48, le=1080, multiple_of=2,
                              description="Low-resolution stream height the models see, px")
    demo_pattern: str | None = Field(
        None, pattern=r"^[a-z0-9_-]{1,50}$",
        description="Pattern id the demo person breathes along with; empty: breathes freely",
        json_schema_extra={"allowed": "a pattern id such as box, or empty"},
    )
    demo_rate_bpm: float = Field(12.0, ge=3, le=40,
                                 description="Free-breathing rate of the demo person, breaths/min")

    @model_validator(mode="after")
    def _lores_fits(self) -> CameraSettings:
        for lores, main in (("lores_width", "width"), ("lores_height", "height")):
            small, big = getattr(self, lores), getattr(self, main)
            if small > big:
                raise _conflict(lores, f"larger than the main stream's {main}", small,
                                f"at most camera.{main} = {big}", main)
        return self


class VisionSettings(Section):
    backend: Literal["litert", "mediapipe"] = Field(
        "litert", description="Landmark backend: litert runs the models directly (faster)"
    )
    threads: int = Field(2, ge=1, le=4, description="CPU threads for the landmark models")
    landmark_refresh_s: float = Field(
        2.0, ge=0.2, le=30,
        description="Seconds between landmark runs that re-place the chest region "
                    "(it is also re-placed when the person moves)",
    )
    model_variant: Literal["fp16", "int8"] = Field(
        "fp16", description="Landmark model weights: fp16 = MediaPipe's bundled model; int8 = "
                            "a quantized model given as landmark_model (litert only)"
    )
    landmark_model: ExistingFile | None = Field(
        None, description="A custom or int8-quantized pose_landmark_full .tflite (litert "
                          "backend); empty: the bundled, sha256-checked model"
    )
    min_confidence: float = Field(0.5, ge=0, le=1,
                                  description="Detection score below which nobody is there")

    @model_validator(mode="after")
    def _int8_needs_litert(self) -> VisionSettings:
        if self.model_variant == "int8" and self.backend != "litert":
            raise _conflict("model_variant", "int8 models run only on the litert backend",
                            self.model_variant, "fp16 with backend mediapipe", "backend")
        if self.model_variant == "int8" and self.landmark_model is None:
            raise _conflict("model_variant", "int8 needs landmark_model (none ships: int8 "
                            "moved landmarks by more than 2 px)", self.model_variant,
                            "fp16, or int8 with landmark_model set", "landmark_model")
        if self.landmark_model is not None and self.backend != "litert":
            raise _conflict("landmark_model", "custom models run only on the litert backend",
                            str(self.landmark_model), "empty with backend mediapipe", "backend")
        return self


class BreathSettings(Section):
    min_rate_bpm: float = Field(2.5, ge=1, le=10,
                                description="Slowest breathing reported, breaths/min (a 4-6-8-3 "
                                            "pattern is 2.9)")
    max_rate_bpm: float = Field(45.0, ge=20, le=60,
                                description="Fastest breathing reported, breaths/min")
    max_hold_s: float = Field(75.0, ge=5, le=120,
                              description="Longest flat stretch still counted as a held breath")
    min_quality: float = Field(0.3, ge=0, le=1,
                               description="Quality below which no rate is shown (no reading)")


class PacingSettings(Section):
    led_pins: list[Pin] = Field(
        default_factory=lambda: [18], min_length=1, max_length=8,
        description="GPIO pins of the guide LED(s), driven together by PWM",
        json_schema_extra={"allowed": f"a list of 1..8 distinct pins, each {_PINS}"},
    )
    haptic_pin: Pin | None = Field(13, description="GPIO pin of the vibration motor driver; "
                                                   "empty: no motor",
                                   json_schema_extra={"allowed": f"{_PINS}, or empty"})
    button_pin: Pin | None = Field(17, description="GPIO pin of the start/stop button (to "
                                                   "ground); empty: no button",
                                   json_schema_extra={"allowed": f"{_PINS}, or empty"})
    gamma: float = Field(2.2, ge=1, le=3, description="LED gamma so brightness looks linear")
    haptic_strength: float = Field(0.6, ge=0, le=1, description="Motor strength, 0 off to 1 full")
    eyes_closed: bool = Field(False, description="Eyes-closed mode: the motor marks every phase "
                                                 "so the guide can be followed without looking")
    led_update_hz: int = Field(100, ge=50, le=1000,
                               description="LED brightness updates per second (smooth fades)")

    @model_validator(mode="after")
    def _pins_distinct(self) -> PacingSettings:
        used: dict[int, tuple[str, str]] = {}  # pin -> (key, field)
        wanted = [(f"led_pins[{i}]", "led_pins", pin) for i, pin in enumerate(self.led_pins)]
        wanted += [(name, name, getattr(self, name)) for name in ("haptic_pin", "button_pin")]
        for key, field, pin in wanted:
            if pin is None:
                continue
            if pin in used:
                raise _conflict(key, f"GPIO {pin} is also pacing.{used[pin][0]}", pin,
                                "a pin no other output uses", used[pin][1])
            used[pin] = (key, field)
        if self.eyes_closed and self.haptic_pin is None:
            raise _conflict("eyes_closed", "eyes-closed mode needs pacing.haptic_pin", True,
                            "false when there is no motor", "haptic_pin")
        return self


class WebSettings(Section):
    host: str = Field("0.0.0.0", pattern=r"^[A-Za-z0-9.:-]{1,253}$",
                      description="Address the web app listens on (0.0.0.0: the whole LAN)",
                      json_schema_extra={"allowed": "a hostname or IP address"})
    port: int = Field(8080, ge=1, le=65535, description="TCP port of the web app")
    tls_cert: ExistingFile | None = Field(None, description="TLS certificate (PEM) for https; "
                                                            "empty: plain http")
    tls_key: ExistingFile | None = Field(None, description="TLS private key (PEM) belonging "
                                                           "to tls_cert")
    redirect_port: int | None = Field(
        None, ge=1, le=65535,
        description="With tls_cert set: a plain-http port that sends browsers to https and "
                    "offers the device's CA certificate at /trust; empty: none")

    @model_validator(mode="after")
    def _cert_and_key(self) -> WebSettings:
        if (self.tls_cert is None) != (self.tls_key is None):
            have, missing = ("tls_cert", "tls_key") if self.tls_key is None else (
                "tls_key", "tls_cert")
            raise _conflict(missing, f"{have} is set but {missing} is empty", None,
                            "both set or both empty", have)
        return self


class BrokerSettings(Section):
    host: str = Field("localhost", pattern=r"^[A-Za-z0-9.:-]{1,253}$",
                      description="MQTT broker hostname or IP",
                      json_schema_extra={"allowed": "a hostname or IP address"})
    port: int = Field(1883, ge=1, le=65535, description="MQTT broker port (TLS usually 8883)")
    tls: bool = Field(False, description="Connect with TLS")
    ca_file: ExistingFile | None = Field(None, description="CA certificate (PEM) to trust for "
                                                           "TLS; empty: the system's CAs")
    username: str | None = Field(None, min_length=1, max_length=128,
                                 description="Broker username; empty: anonymous")
    password_file: ExistingFile | None = Field(
        None, description="File whose first line is the broker password (never the password "
                          "itself here); empty: no password")
    keepalive: int = Field(60, ge=5, le=3600, description="MQTT keepalive, seconds")

    @model_validator(mode="after")
    def _consistent(self) -> BrokerSettings:
        if self.ca_file is not None and not self.tls:
            raise _conflict("ca_file", "a CA file is set but tls is false", str(self.ca_file),
                            "empty, or tls = true", "tls")
        _password_needs_username(self)
        return self


def _password_needs_username(account: BrokerSettings | OperatorSettings) -> None:
    if account.password_file is not None and account.username is None:
        raise _conflict("password_file", "a password needs a username",
                        str(account.password_file), "empty, or username set", "username")


class MqttSettings(BrokerSettings):
    enabled: bool = Field(False, description="Sync with the relay over MQTT")
    telemetry_interval_s: float = Field(30.0, ge=1, le=3600,
                                        description="Seconds between telemetry messages")


class PrivacySettings(Section):
    retention: Literal["30d", "1y", "forever"] = Field(
        "1y", description="How long sessions are kept on the device")
    share_metrics: bool = Field(False, description="Send session metrics (never video) to "
                                                   "the relay")
    allow_analytics: bool = Field(False, description="Allow anonymous usage counts for the fleet")

    @property
    def retention_days(self) -> int | None:
        """Days sessions are kept; None means forever."""
        return {"30d": 30, "1y": 365, "forever": None}[self.retention]


class ChainSettings(Section):
    rpc_url: str = Field("http://127.0.0.1:8545", pattern=r"^https?://\S+$",
                         description="Ethereum JSON-RPC endpoint (HTTP) used to mint",
                         json_schema_extra={"allowed": "an http:// or https:// URL"})
    chain_id: int = Field(31337, ge=1, le=2**53 - 1, description="Chain id (31337: a local dev "
                                                             "chain)")
    key_file: ExistingFile | None = Field(None, description="File holding the minter's private "
                                                            "key (hex); empty: minting is off")
    contract_address: str | None = Field(
        None, pattern=r"^0x[0-9a-fA-F]{40}$",
        description="Deployed achievement (ERC-721) contract; empty: not deployed yet",
        json_schema_extra={"allowed": "0x and 40 hex digits, or empty"},
    )
    patterns_contract_address: str | None = Field(
        None, pattern=r"^0x[0-9a-fA-F]{40}$",
        description="Deployed pattern-token (ERC-721) contract; empty: pattern minting is off",
        json_schema_extra={"allowed": "0x and 40 hex digits, or empty"},
    )


def _store_url(value: str) -> str:
    scheme = value.split("://", 1)[0] if "://" in value else None
    if scheme not in (None, "sqlite", "postgresql", "postgres"):
        raise PydanticCustomError("bad_scheme", "unsupported database scheme {scheme}",
                                  {"scheme": scheme})
    return value


# an operator's broker username (its client id is breathe-operator-USERNAME)
OPERATOR_NAME = r"^[a-z0-9][a-z0-9_.-]{0,63}$"


class OperatorSettings(Section):
    username: str | None = Field(
        None, pattern=OPERATOR_NAME,
        description="Broker account that 'breathe relay cmd' and 'config set' use (made by "
                    "'breathe relay accounts add-operator'; client id "
                    "breathe-operator-USERNAME); empty: the relay's own account",
        json_schema_extra={"allowed": "1-64 lowercase letters, digits, '_', '.' or '-', or "
                                      "empty"})
    password_file: ExistingFile | None = Field(
        None, description="File whose first line is that account's password; empty: none")

    @model_validator(mode="after")
    def _consistent(self) -> OperatorSettings:
        _password_needs_username(self)
        return self


class RelaySettings(Section):
    mqtt: BrokerSettings = Field(default_factory=BrokerSettings,
                                 description="The relay's own broker connection")
    operator: OperatorSettings = Field(
        default_factory=OperatorSettings,
        description="The operator's broker account, for commands and config sent from the CLI")
    share_group: str = Field("relay", pattern=r"^[A-Za-z0-9_-]{1,64}$",
                             description="Shared-subscription group: relays in one group "
                                         "split the fleet's messages",
                             json_schema_extra={"allowed": "1-64 letters, digits, '_' or '-'"})
    store_url: Annotated[str, AfterValidator(_store_url)] = Field(
        "~/.local/share/breathe-relay/relay.db", min_length=1,
        description="Relay database: SQLite for one relay, PostgreSQL for several",
        json_schema_extra={"allowed": "a file path, sqlite:///PATH or postgresql://USER@HOST/DB"},
    )
    chain: ChainSettings = Field(default_factory=ChainSettings,
                                 description="Where achievement tokens are minted")


class Settings(Section):
    """The whole configuration; every section has defaults."""

    device: DeviceSettings = Field(default_factory=DeviceSettings, description="This device")
    camera: CameraSettings = Field(default_factory=CameraSettings, description="Frame source")
    vision: VisionSettings = Field(default_factory=VisionSettings, description="Landmarks")
    breath: BreathSettings = Field(default_factory=BreathSettings,
                                   description="Breath estimator")
    pacing: PacingSettings = Field(default_factory=PacingSettings,
                                   description="Guide light, motor and button")
    web: WebSettings = Field(default_factory=WebSettings, description="Web app")
    mqtt: MqttSettings = Field(default_factory=MqttSettings, description="Sync with the relay")
    privacy: PrivacySettings = Field(default_factory=PrivacySettings,
                                     description="What is kept and shared")
    relay: RelaySettings = Field(default_factory=RelaySettings,
                                 description="The cloud relay (used only by `breathe relay`)")

    @property
    def data_path(self) -> Path:
        """``device.data_dir`` with ``~`` expanded."""
        return self.device.data_dir.expanduser()
