"""Appliance settings: pydantic models are the single source of truth, loaded from TOML + env.

One small model per section, each field with a description and bounds, so the shipped
``firmware_config/device.toml``, ``breathe config check`` and every error message come from the
same place. Errors read ``FILE: section.key: message (got X; allowed Y)``.

TOML has no null: an empty string means "not set" for every optional field.

Layout: ``models`` (the section models), ``schema`` (docs derived from them), ``masking``
(hiding secrets), ``problems`` (error rendering), ``loading`` (TOML + env, check and load).
"""

from common.config.loading import (
    CONFIG_ENV,
    DATA_DIR_ENV,
    DEFAULTS_LABEL,
    ENV_PREFIX,
    check_config,
    config_path,
    data_dir,
    env_overrides,
    load_config,
)
from common.config.masking import mask_secrets, mask_url
from common.config.models import (
    DEFAULT_DATA_DIR,
    BreathSettings,
    BrokerSettings,
    CameraSettings,
    ChainSettings,
    DeviceSettings,
    ExistingFile,
    MqttSettings,
    PacingSettings,
    Pin,
    PrivacySettings,
    RelaySettings,
    Section,
    Settings,
    VisionSettings,
    WebSettings,
    default_data_dir,
)
from common.config.problems import InvalidConfig, Problem
from common.config.schema import field_docs, section_model

__all__ = [
    "CONFIG_ENV",
    "DATA_DIR_ENV",
    "DEFAULTS_LABEL",
    "DEFAULT_DATA_DIR",
    "ENV_PREFIX",
    "BreathSettings",
    "BrokerSettings",
    "CameraSettings",
    "ChainSettings",
    "DeviceSettings",
    "ExistingFile",
    "InvalidConfig",
    "MqttSettings",
    "PacingSettings",
    "Pin",
    "PrivacySettings",
    "Problem",
    "RelaySettings",
    "Section",
    "Settings",
    "VisionSettings",
    "WebSettings",
    "check_config",
    "config_path",
    "data_dir",
    "default_data_dir",
    "env_overrides",
    "field_docs",
    "load_config",
    "mask_secrets",
    "mask_url",
    "section_model",
]
