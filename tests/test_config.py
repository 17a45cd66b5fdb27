"""Config validation: bad tables and keys stop start-up with a message that names them."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import textwrap
import tomllib
import typing
from pathlib import Path
from typing import Any

import pytest

from hub.config import Config, Secret, config_from_dict, load_config
from hub.errors import StartupError
from hub.registry import load_registry
from hub.runtime import build_programs
from hub.settings import parse_table


@pytest.mark.parametrize("raw, message", [
    ({"database": {"urll": "x"}}, "[database] unknown key 'urll'"),
    ({"server": {"max_body_bytes": "big"}}, "[server] max_body_bytes must be a whole number"),
    ({"connectors": {"paypal": {"mode": "production"}}}, "[connectors.paypal] mode must be one of"),
    ({"nonsense": {}}, "unknown table [nonsense]"),
    ({"programs": {"cc": {"currency": "USD"}}}, "[programs.cc] missing required key 'plugin'"),
    ({"programs": {"cc": {"plugin": "nope"}}}, "[programs.cc] plugin: unknown plugin 'nope'"),
    ({"programs": {"cc": {"plugin": "crazycall", "rate": "lots"}}},
     "[programs.cc] rate must be a number"),
    ({"programs": {"cc": {"plugin": "crazycall", "rat": 0.2}}}, "[programs.cc] unknown key 'rat'"),
    ({"programs": {"cc": {"plugin": "crazycall", "rate": 2}}},
     "[programs.cc] rate must be between 0 and 1"),
    ({"programs": {"cc": {"plugin": "crazycall", "currency": "dollars"}}},
     "[programs.cc] currency must be"),
    ({"programs": {"cc": {"plugin": "crazycall", "hold_days": 1.5}}},
     "[programs.cc] hold_days must be a whole number"),
])
def test_bad_config_names_table_and_key(raw, message):
    with pytest.raises(StartupError) as info:
        config = config_from_dict(raw)
        build_programs(config, load_registry())
    assert message in str(info.value)


def test_float_rates_become_exact_decimals():
    from decimal import Decimal

    config = config_from_dict({"programs": {"cc": {"plugin": "crazycall", "rate": 0.2}}})
    program = build_programs(config, load_registry())["cc"]
    assert program.settings.rate == Decimal("0.2")


def test_env_overrides_secrets_and_they_never_show_in_repr(tmp_path):
    path = tmp_path / "hub.toml"
    path.write_text('[connectors.stripe]\nwebhook_secret = "from-file"\n')
    config = load_config(str(path), {"HUB_STRIPE_WEBHOOK_SECRET": "whsec_from_env",
                                     "HUB_ADMIN_TOKEN": "tok_env"})
    assert config.connectors.stripe.webhook_secret == "whsec_from_env"
    assert isinstance(config.server.admin_token, Secret)
    assert "whsec_from_env" not in repr(config) and "tok_env" not in repr(config)


def test_no_config_runs_on_embedded_defaults():
    config = load_config(None, {})
    assert config.database.url == "sqlite:///./hub.db"
    assert config.queue.url == ""
    assert config.connectors.paypal.mode == "dry-run"


def test_hub_serve_with_broken_config_exits_non_zero_naming_the_key(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text(textwrap.dedent("""
        [programs.partners]
        plugin = "crazycall"
        rate = "twenty percent"
    """))
    result = subprocess.run([sys.executable, "-m", "hub.cli", "serve", "--config", str(path)],
                            capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert result.returncode == 2
    assert "[programs.partners] rate must be a number" in result.stderr


def test_config_example_is_valid():
    from pathlib import Path

    example = Path(__file__).parent.parent / "config.example.toml"
    config = load_config(str(example), {})
    programs = build_programs(config, load_registry())
    assert programs


EXAMPLE = Path(__file__).parent.parent / "config.example.toml"
# Keys the example fills with an illustration instead of the default; their comment names it.
ILLUSTRATED = {("server", "allowed_domains"), ("links", "banner_url"), ("links", "logo_url"),
               ("links", "screenshot_url")}


def _hub_tables(cls: type, prefix: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], type]]:
    hints = typing.get_type_hints(cls)
    found = []
    for f in dataclasses.fields(cls):
        if dataclasses.is_dataclass(hints[f.name]):
            found.append(((*prefix, f.name), hints[f.name]))
            found.extend(_hub_tables(hints[f.name], (*prefix, f.name)))
    return found


FIELD_OF_KEY = {("email", "from"): "sender"}


def test_config_example_shows_every_key_with_its_real_default():
    raw = tomllib.loads(EXAMPLE.read_text())
    text = EXAMPLE.read_text()
    for path, cls in _hub_tables(Config):
        table: Any = raw
        for name in path:
            table = table.get(name, {})
        where = ".".join(path)
        default = cls()
        # `[email] from` is read into the field `sender` (`from` is a Python keyword)
        table = {FIELD_OF_KEY.get((where, k), k): v for k, v in table.items()}
        shown = parse_table(cls, {k: v for k, v in table.items()
                                  if not isinstance(v, dict)}, where)
        for f in dataclasses.fields(cls):
            if dataclasses.is_dataclass(f.type) or f.name in ("stripe", "paypal"):
                continue
            assert f.name in table, f"config.example.toml: [{where}] lacks {f.name!r}"
            if (*path, f.name) in ILLUSTRATED:
                line = next(x for x in text.splitlines() if x.startswith(f"{f.name} ="))
                assert "default:" in line, f"[{where}] {f.name}: say the default"
                continue
            assert getattr(shown, f.name) == getattr(default, f.name), (
                f"config.example.toml: [{where}] {f.name} is not the default "
                f"{getattr(default, f.name)!r}")


# Program keys the example fills with the program's real value; their comment names the default.
ILLUSTRATED_PROGRAM_KEYS = {("calltrackingmetrics", "contact_email")}


def test_config_example_programs_show_every_setting_of_their_plugin_at_its_default():
    raw = tomllib.loads(EXAMPLE.read_text())
    kinds = load_registry().kinds
    assert set(raw["programs"]) == set(kinds)  # all five, side by side
    for name, table in raw["programs"].items():
        settings_cls = kinds[table["plugin"]].settings
        shown = parse_table(settings_cls, table, f"programs.{name}")
        default = settings_cls(plugin=table["plugin"])
        for f in dataclasses.fields(settings_cls):
            assert f.name in table, f"config.example.toml: [programs.{name}] lacks {f.name!r}"
            if (name, f.name) in ILLUSTRATED_PROGRAM_KEYS:
                line = next(x for x in EXAMPLE.read_text().splitlines()
                            if x.startswith(f"{f.name} = {table[f.name]!r}".replace("'", '"')))
                assert "default:" in line, f"[programs.{name}] {f.name}: say the default"
                continue
            assert getattr(shown, f.name) == getattr(default, f.name), (name, f.name)
