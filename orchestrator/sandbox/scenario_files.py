"""Scenario files: finding them, loading and checking them (strictly, before anything runs),
and the config a scenario runs with."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from orchestrator.config import Config, build_config
from orchestrator.errors import ConfigError
from orchestrator.sandbox.scenario_defaults import SHIPPED_CONFIG, shipped_config_data
from orchestrator.sandbox.scenario_schema import validate

DEFAULT_DIR = Path("tests/scenarios")


class ScenarioError(Exception):
    """The scenario file itself is wrong (not the product)."""


def scenario_config(overrides: Mapping[str, Any] | None) -> Config:
    """The shipped default config (sandbox placeholders), with per-scenario overrides."""
    data = _merge(shipped_config_data(), dict(overrides or {}))
    data.setdefault("service", {})["mode"] = "sandbox"
    return build_config(
        data, f"{SHIPPED_CONFIG} + scenario overrides", env={"ORCHESTRATOR_MODE": "sandbox"}
    )


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def load(path: Path) -> dict[str, Any]:
    """Read and check a scenario file; `ScenarioError` lists every problem (file, step number,
    key path, a suggestion)."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{path}: not valid YAML: {exc}") from None
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read: {exc.strerror}") from None
    problems = [p.render(str(path)) for p in validate(data)]
    if not problems and isinstance(data, dict):
        try:
            config = scenario_config(data.get("config"))
        except ConfigError as exc:
            problems.append(f"{path}: config: {exc}")
        else:
            if data.get("channel") == "messenger" and not config.accounts[0].messenger:
                problems.append(
                    f"{path}: channel: messenger, but accounts[0] of its config has no "
                    'Messenger channel (channels = ["instagram", "messenger"] and a page_id)'
                )
    if problems:
        raise ScenarioError("\n".join(problems))
    assert isinstance(data, dict)
    return data


def discover(paths: Sequence[str]) -> list[Path]:
    targets = [Path(p) for p in paths] or [DEFAULT_DIR]
    files: list[Path] = []
    for t in targets:
        if t.is_dir():
            files.extend(sorted(t.glob("*.yaml")))
        elif t.is_file():
            files.append(t)
        else:
            raise ScenarioError(f"{t}: no such scenario file or folder")
    return files


def check_files(files: Sequence[Path]) -> list[str]:
    """Every problem of every file (empty: all fine)."""
    problems: list[str] = []
    for path in files:
        try:
            load(path)
        except ScenarioError as exc:
            problems.append(str(exc))
    return problems
