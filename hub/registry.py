"""The plugin manager: every plugin, built-in or third-party, comes from the `hub` entry-point
group.

The five programs and the two connectors that ship with the hub are declared as entry points in
the project's own `pyproject.toml`, exactly as a third-party package declares its own, so the
core names none of them. `HUB_LOAD_PLUGINS` restricts which *other* distributions' entry points
load (comma-separated names; empty for none), the way llm's `LLM_LOAD_PLUGINS` does, so tests
stay free of whatever else is installed; the hub's own always load.
"""

from __future__ import annotations

import importlib.metadata
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pluggy

from hub import hookspecs
from hub.errors import StartupError
from hub.programs import ProgramKind

ENTRY_POINT_GROUP = "hub"
DISTRIBUTION = "partner-hub"


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
    """What the plugins registered: program kinds (with the plugin that owns each) and
    connectors."""

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
    allowed = os.environ.get("HUB_LOAD_PLUGINS")
    names = None if allowed is None else {n.strip() for n in allowed.split(",") if n.strip()}
    builtins = 0
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        own = _distribution(ep) == DISTRIBUTION
        builtins += own
        if (own or names is None or ep.name in names) and not pm.has_plugin(ep.name):
            pm.register(ep.load(), name=ep.name)
    if not builtins:
        raise StartupError(f"no {ENTRY_POINT_GROUP!r} entry points of {DISTRIBUTION!r} found: "
                           "install the project (pip install -e .) so its built-in programs "
                           "and connectors register")
    pm.check_pending()
    return pm


def _distribution(ep: importlib.metadata.EntryPoint) -> str | None:
    dist = ep.dist
    return None if dist is None else dist.metadata["Name"]


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
