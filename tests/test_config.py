"""Config validation: bad tables and keys stop start-up with a message that names them."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from hub.config import Secret, config_from_dict, load_config
from hub.errors import StartupError
from hub.registry import load_registry
from hub.runtime import build_programs


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
