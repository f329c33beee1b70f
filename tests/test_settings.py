"""labral.settings: the one settings style (a pydantic model whose schema Hydra composes on)."""

from __future__ import annotations

import pytest
from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, OmegaConf
from pydantic import Field

from labral.errors import BadConfigError
from labral.settings import Settings, Text, register_schema, schema_node, settings_from_config


class Part(Settings):
    url: str | None = None
    retries: int = Field(3, ge=0)


class Example(Settings):
    bundle: Text
    port: int = 8000
    names: tuple[str, ...] = ("a", "b")
    part: Part = Field(default_factory=Part)
    switch: bool = False


def test_schema_states_every_field_once_with_its_default() -> None:
    node = schema_node(Example)
    assert node == {
        "bundle": MISSING,
        "port": 8000,
        "names": ["a", "b"],
        "part": {"url": None, "retries": 3},
        "switch": False,
    }


def test_registered_schema_leaves_out_command_line_switches() -> None:
    register_schema("example_schema_test", Example, leave_out=("switch",))
    stored = ConfigStore.instance().load("example_schema_test.yaml").node
    assert "switch" not in stored and stored["port"] == 8000


def test_settings_from_config_types_values_and_ignores_other_groups() -> None:
    composed = {"bundle": 2024, "port": "${paths.port}", "paths": {"port": 9000}}
    cfg = OmegaConf.create({**composed, "hydra": {"unresolvable": "${nope}"}})
    settings = settings_from_config(Example, cfg, ignore=("paths",))
    assert settings.bundle == "2024"  # a path typed as a number stays text
    assert settings.port == 9000  # interpolations resolve against the whole config
    assert settings.part.retries == 3


def test_bad_values_and_unknown_keys_name_the_key() -> None:
    with pytest.raises(BadConfigError, match=r"^part\.retries=-1: Input should be greater"):
        settings_from_config(Example, {"bundle": "b", "part": {"retries": -1}})
    with pytest.raises(BadConfigError, match="^colour: unknown setting$"):
        settings_from_config(Example, {"bundle": "b", "colour": "red"})
    with pytest.raises(BadConfigError, match="^bundle: missing; set it$"):
        settings_from_config(Example, {})
