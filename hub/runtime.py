"""The running hub: config, plugins, enabled programs, the database and the queue.

`Hub` is what every part of the core is handed. It is assembled by the composition root
(`hub.app.build_hub`), which also wires the queue the jobs side declares (`hub.jobs.actors`):
lower layers only say "send this message after the commit" (`send_after_commit`) and never
import the queue or its actors.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from hub.config import Config
from hub.db.session import transaction
from hub.errors import StartupError
from hub.programs import KindProfile, PayoutPolicy, Program
from hub.registry import Registry
from hub.settings import parse_table

AFTER_COMMIT = "hub_after_commit"
QUEUE_KEY = "queue"
log = logging.getLogger(__name__)


class Messenger(Protocol):
    """What the core needs of the queue: send a job message by actor name (ids only)."""

    def send(self, name: str, *args: Any, delay_ms: int | None = None) -> None: ...


def after_commit(session: Session, job: Callable[[Hub], None]) -> None:
    """Run `job(hub)` after the transaction `session` belongs to commits (see Hub.transaction)."""
    session.info.setdefault(AFTER_COMMIT, []).append(job)


def send_after_commit(session: Session, name: str, *args: Any) -> None:
    """Send the job message `name(*args)` once the surrounding `hub.transaction()` has committed.
    A message that cannot be sent is logged: its row is committed, and `hub tick` re-sends it."""
    after_commit(session, lambda hub: hub.send_quietly(name, args))


@dataclass
class Hub:
    config: Config
    registry: Registry
    programs: dict[str, Program]
    engine: Engine
    sessions: sessionmaker[Session]
    extras: dict[str, Any] = field(default_factory=dict)
    # Builds the queue on first use; set by the composition root (`hub.app.build_hub`).
    queue_factory: Callable[[Hub], Messenger] | None = None

    @property
    def queue(self) -> Any:
        """The hub's queue (a `hub.jobs.queue.Queue`), built on first use."""
        queue = self.extras.get(QUEUE_KEY)
        if queue is None:
            if self.queue_factory is None:
                raise RuntimeError("this hub has no queue: build it with hub.app.build_hub")
            queue = self.extras.setdefault(QUEUE_KEY, self.queue_factory(self))
        return queue

    def send_quietly(self, name: str, args: tuple[Any, ...]) -> None:
        try:
            self.queue.send(name, *args)
        except Exception as exc:  # noqa: BLE001 - the row is committed; `hub tick` re-sends it
            log.warning("could not enqueue %s%r: %s; hub tick will re-send it", name, args,
                        type(exc).__name__)

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One unit of work. Jobs queued with `after_commit` run once it has committed (messages
        are never sent for work that might still roll back)."""
        with transaction(self.sessions) as session:
            yield session
            jobs = session.info.pop(AFTER_COMMIT, [])
        for job in jobs:
            job(self)

    def program(self, name: str) -> Program | None:
        return self.programs.get(name)

    def rules(self, program: Program, hook: str, **kwargs: Any) -> list[Any]:
        """Call a rule hook on the plugin owning `program` only; flatten the answers."""
        answers = self.registry.rules(program.plugin, hook)(program=program, **kwargs)
        if not isinstance(answers, list):  # firstresult hooks
            return [] if answers is None else [answers]
        return [item for answer in answers if answer for item in answer]

    def first(self, program: Program, hook: str, **kwargs: Any) -> Any:
        return self.registry.rules(program.plugin, hook)(program=program, **kwargs)

    def constant(self, program: Program, hook: str, many: bool = False) -> Any:
        """The answer of a rule hook that takes only the program (its settings are fixed at
        start-up, and rules are pure), computed once: the per-event path asks it every time."""
        cache = self.extras.setdefault("rule_constants", {})
        key = (program.name, hook, many)
        if key not in cache:
            cache[key] = self.rules(program, hook) if many else self.first(program, hook)
        return cache[key]

    def payout_policy(self, program: Program, partner_kind: str) -> PayoutPolicy:
        policy = self.first(program, "payout_policy", partner_kind=partner_kind)
        return policy or PayoutPolicy(mode="request")

    def kind_profile(self, program: Program, partner_kind: str) -> KindProfile:
        return (self.first(program, "partner_kind_profile", partner_kind=partner_kind)
                or KindProfile())

    def implements(self, program: Program, hook: str) -> bool:
        """True when the plugin owning `program` implements `hook` (so the core may skip it)."""
        return bool(self.registry.rules(program.plugin, hook).get_hookimpls())

    def connector(self, name: str) -> Any:
        return self.registry.connectors.get(name)


def build_programs(config: Config, registry: Registry) -> dict[str, Program]:
    programs: dict[str, Program] = {}
    for name, table in config.programs.items():
        where = f"programs.{name}"
        plugin = table.get("plugin")
        if not isinstance(plugin, str) or not plugin:
            raise StartupError(f"[{where}] missing required key 'plugin'")
        kind = registry.kinds.get(plugin)
        if kind is None:
            known = ", ".join(sorted(registry.kinds)) or "none"
            raise StartupError(f"[{where}] plugin: unknown plugin {plugin!r} (installed: {known})")
        settings = parse_table(kind.settings, table, where)
        programs[name] = Program(name=name, plugin=plugin, settings=settings, kinds=kind.kinds)
    return programs
