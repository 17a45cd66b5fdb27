"""The plugin manager: built-in plugins first, then the `hub` entry-point group.

`HUB_LOAD_PLUGINS` restricts which entry points load (comma-separated names; empty for none), the
way llm's `LLM_LOAD_PLUGINS` does, so tests stay free of whatever else is installed.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Callable

import pluggy

from hub import hookspecs
from hub.errors import StartupError
from hub.programs import ProgramKind

BUILTIN_PLUGINS = (
    "plugins.crazycall",
    "plugins.callpage",
    "plugins.callbell",
    "plugins.calltrackingmetrics",
    "plugins.odoopbx",
    "connectors.stripe",
    "connectors.paypal",
)


@dataclass(frozen=True)
class Connector:
    """`process(hub, event) -> bool` stores and applies one exported provider event (the path
    `hub replay` uses); it returns False for an event the hub already had."""


    name: str
    routes: list[Any] = field(default_factory=list)
    process: Callable[[Any, dict[str, Any]], bool] | None = None
    description: str = ""
    # `payout_gateway(hub)` builds the `hub.payouts.states.PayoutGateway` that pays payouts whose
    # method is this connector's name (``paypal``); None for connectors that only bill.
    payout_gateway: Callable[[Any], Any] | None = None
    # `prepare(hub, event, session)` reads an exported event into a `hub.ingest.events.Incoming`
    # without storing it, so `hub replay` can apply many events in one transaction; connectors
    # without it are replayed one `process` call (one transaction) per event.
    prepare: Callable[..., Any] | None = None


@dataclass
class Registry:
    """What the plugins registered: program kinds (with the plugin that owns each) and connectors."""

    pm: pluggy.PluginManager
    kinds: dict[str, ProgramKind] = field(default_factory=dict)
    owners: dict[str, object] = field(default_factory=dict)
    connectors: dict[str, Any] = field(default_factory=dict)
    _callers: dict[tuple[str, str], Any] = field(default_factory=dict)

    def rules(self, kind_name: str, hook: str) -> Any:
        """The hook caller for `hook` restricted to the plugin owning `kind_name`, built once."""
        cache_key = (kind_name, hook)
        caller = self._callers.get(cache_key)
        if caller is None:
            owner = self.owners[kind_name]
            others = [p for p in self.pm.get_plugins() if p is not owner]
            caller = self.pm.subset_hook_caller(hook, remove_plugins=others)
            self._callers[cache_key] = caller
        return caller


def plugin_manager() -> pluggy.PluginManager:
    pm = pluggy.PluginManager("hub")
    pm.add_hookspecs(hookspecs)
    for name in BUILTIN_PLUGINS:
        pm.register(importlib.import_module(name), name=name)
    _load_entry_points(pm)
    pm.check_pending()
    return pm


def _load_entry_points(pm: pluggy.PluginManager) -> None:
    allowed = os.environ.get("HUB_LOAD_PLUGINS")
    if allowed is None:
        pm.load_setuptools_entrypoints("hub")
        return
    names = {n.strip() for n in allowed.split(",") if n.strip()}
    for ep in importlib.metadata.entry_points(group="hub"):
        if ep.name in names and not pm.has_plugin(ep.name):
            pm.register(ep.load(), name=ep.name)


def load_registry(pm: pluggy.PluginManager | None = None) -> Registry:
    pm = pm or plugin_manager()
    registry = Registry(pm=pm)
    for impl in pm.hook.register_programs.get_hookimpls():
        impl.function(register=_kind_registrar(registry, impl.plugin, impl.plugin_name))
    pm.hook.register_connectors(register=lambda c: _register_connector(registry, c))
    return registry


def _kind_registrar(registry: Registry, plugin: object, plugin_name: str) -> Any:
    def register(kind: ProgramKind) -> None:
        if kind.name in registry.kinds:
            raise StartupError(f"program plugin {kind.name!r} is registered twice "
                               f"(again by {plugin_name})")
        registry.kinds[kind.name] = kind
        registry.owners[kind.name] = plugin

    return register


def _register_connector(registry: Registry, connector: Any) -> None:
    if connector.name in registry.connectors:
        raise StartupError(f"connector {connector.name!r} is registered twice")
    registry.connectors[connector.name] = connector


def module_name(plugin: ModuleType | object) -> str:
    return getattr(plugin, "__name__", type(plugin).__name__)
