"""Configuration: one TOML file, validated whole at start-up (see `loading`).

`types` holds the value objects, `validation` the readers that report every mistake with its
key path, `loading` reads the file and the environment and assembles the whole.
"""

from orchestrator.config.loading import DEFAULT_CONFIG_PATH, build_config, load_config
from orchestrator.config.types import (
    CHANNELS,
    AccountConfig,
    AppConfig,
    Channel,
    Config,
    DisclosureConfig,
    HandoverConfig,
    RateLimitConfig,
    Secret,
    ServiceConfig,
)
from orchestrator.config.validation import parse_duration

__all__ = [
    "CHANNELS",
    "DEFAULT_CONFIG_PATH",
    "AccountConfig",
    "AppConfig",
    "Channel",
    "Config",
    "DisclosureConfig",
    "HandoverConfig",
    "RateLimitConfig",
    "Secret",
    "ServiceConfig",
    "build_config",
    "load_config",
    "parse_duration",
]
