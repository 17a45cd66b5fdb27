"""The plugin system: documented hooks, built-ins as ordinary plugins, third parties plug in."""

from __future__ import annotations

import inspect
from dataclasses import dataclass

import pluggy

from hub import hookimpl, hookspecs
from hub.config import config_from_dict
from hub.programs import Draft, ProgramKind, ProgramSettings
from hub.registry import load_registry, plugin_manager
from hub.runtime import build_programs


def test_every_hook_is_documented():
    hooks = [f for name, f in inspect.getmembers(hookspecs, inspect.isfunction)
             if hasattr(f, "hub_spec")]
    assert len(hooks) >= 8
    for hook in hooks:
        assert (hook.__doc__ or "").strip(), f"{hook.__name__} has no docstring"


def test_builtins_register_as_plugins_and_nothing_is_pending():
    registry = load_registry()
    assert "crazycall" in registry.kinds
    assert "stripe" in registry.connectors
    registry.pm.check_pending()


def test_builtins_come_from_the_projects_own_entry_points(monkeypatch):
    """The core lists no built-in: they are the `hub` entry points of this distribution, loaded
    even when HUB_LOAD_PLUGINS keeps every other distribution's plugins out."""
    import importlib.metadata

    own = {ep.name: ep.value for ep in importlib.metadata.entry_points(group="hub")
           if ep.dist is not None and ep.dist.metadata["Name"] == "partner-hub"}
    assert own == {"crazycall": "plugins.crazycall", "callpage": "plugins.callpage",
                   "callbell": "plugins.callbell",
                   "calltrackingmetrics": "plugins.calltrackingmetrics",
                   "odoopbx": "plugins.odoopbx", "stripe": "connectors.stripe",
                   "paypal": "connectors.paypal"}
    monkeypatch.setenv("HUB_LOAD_PLUGINS", "")
    registry = load_registry()
    assert sorted(registry.kinds) == ["callbell", "callpage", "calltrackingmetrics", "crazycall",
                                      "odoopbx"]
    assert sorted(registry.connectors) == ["paypal", "stripe"]


@dataclass(frozen=True)
class FlatSettings(ProgramSettings):
    bounty: int = 500


class ThirdParty:
    """A plugin as a third-party package would ship it."""

    @hookimpl
    def register_programs(self, register):
        register(ProgramKind(name="flatfee", settings=FlatSettings))

    @hookimpl
    def commissions_for_payment(self, program, payment, referral, history):
        return [Draft(key=f"flat:{payment.ref}", amount=program.settings.bounty,
                      currency=program.currency, earned_at=payment.occurred_at,
                      rule="flat", sentence="flat fee")]


def test_a_third_party_program_plugs_in_and_only_answers_for_its_own_programs():
    pm = plugin_manager()
    pm.register(ThirdParty(), name="thirdparty")
    registry = load_registry(pm)
    config = config_from_dict({"programs": {"a": {"plugin": "flatfee", "bounty": 700},
                                            "b": {"plugin": "crazycall"}}})
    programs = build_programs(config, registry)
    assert programs["a"].settings.bounty == 700
    caller = registry.rules("flatfee", "commissions_for_payment")
    impls = [i.plugin_name for i in caller.get_hookimpls()]
    assert impls == ["thirdparty"]
    other = [i.plugin_name
             for i in registry.rules("crazycall", "commissions_for_payment").get_hookimpls()]
    assert other == ["crazycall"]


def test_misspelled_hook_fails_at_start_up():
    import pytest

    class Typo:
        @hookimpl
        def comissions_for_payment(self, program):
            return None

    pm = plugin_manager()
    pm.register(Typo())
    with pytest.raises(pluggy.PluginValidationError):
        pm.check_pending()
