"""Background jobs on Dramatiq: one broker per hub, the same actors everywhere.

With `[queue] url` set, jobs go through Redis to `hub worker` processes. Without it (the embedded
default) the same actors run on a `StubBroker` consumed by a `dramatiq.Worker` in this process,
started on the first message. That keeps one code path: retries with backoff, `throws=` and the
retry-exhausted dead letter behave the same as with Redis, and a slow PayPal call never blocks the
HTTP request that caused it (which running the job inline after the commit would).

Jobs are plain functions `job(hub, *ids)`, declared as actors in one table (`hub.jobs.actors`);
a message carries ids only, and every job is safe to run twice. The database is the source of truth:
`hub tick` re-sends whatever is stuck, so a lost message delays work but never loses it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import dramatiq
import dramatiq.errors
from dramatiq.brokers.stub import StubBroker

from hub.errors import PermanentError
from hub.runtime import QUEUE_KEY, Hub

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class JobSpec:
    name: str
    func: Callable[..., None]
    queue_name: str
    on_exhausted: str | None = None
    retries: bool = True


@dataclass
class Queue:
    """A hub's broker with its actors; `worker` is the in-process worker (embedded mode only)."""

    hub: Hub
    broker: dramatiq.Broker
    specs: tuple[JobSpec, ...] = ()
    actors: dict[str, dramatiq.Actor] = field(default_factory=dict)
    worker: dramatiq.Worker | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def in_process(self) -> bool:
        return isinstance(self.broker, StubBroker)

    def send(self, name: str, *args: Any, delay_ms: int | None = None) -> None:
        if self.in_process:
            self.start_worker()
        self.actors[name].send_with_options(args=args, delay=delay_ms)

    def start_worker(self, threads: int = 2) -> dramatiq.Worker:
        with self._lock:
            if self.worker is None:
                self.worker = dramatiq.Worker(self.broker, worker_threads=threads,
                                              worker_timeout=50)
                self.worker.start()
            return self.worker

    def join(self, timeout_ms: int = 30_000) -> None:
        """Embedded mode: wait until every queue is drained (used by `hub tick` and tests)."""
        if not self.in_process:
            return
        for name in sorted({spec.queue_name for spec in self.specs}):
            try:
                self.broker.join(name, timeout=timeout_ms, fail_fast=False)  # type: ignore[call-arg]
            except dramatiq.errors.QueueJoinTimeout:
                # Jobs waiting out a backoff are dropped with this process; their rows stay
                # queued/pending and the next `hub tick` sends them again.
                log.warning("queue %s still busy after %d ms", name, timeout_ms)
                return
        if self.worker is not None:
            self.worker.join()

    def close(self) -> None:
        if self.worker is not None:
            self.worker.stop(timeout=5_000)
            self.worker = None
        self.broker.close()


def make_broker(hub: Hub) -> dramatiq.Broker:
    conf = hub.config.queue
    if conf.url:
        from dramatiq.brokers.redis import RedisBroker

        return RedisBroker(url=conf.url, namespace=conf.namespace)
    return StubBroker()


def build_queue(hub: Hub, specs: Iterable[JobSpec],
                broker: dramatiq.Broker | None = None) -> Queue:
    """The broker and one actor per job spec, bound to `hub`."""
    queue = Queue(hub=hub, broker=broker or make_broker(hub), specs=tuple(specs))
    conf = hub.config.queue
    for spec in queue.specs:
        options: dict[str, Any] = {"throws": (PermanentError,)}
        if spec.retries:
            options.update(max_retries=conf.max_retries, min_backoff=conf.min_backoff_ms,
                           max_backoff=conf.max_backoff_ms)
        else:
            options["max_retries"] = 0
        if spec.on_exhausted:
            options["on_retry_exhausted"] = spec.on_exhausted
        queue.actors[spec.name] = dramatiq.Actor(
            _bound(hub, spec.func), broker=queue.broker, actor_name=spec.name,
            queue_name=spec.queue_name, priority=0, options=options)
    return queue


def _bound(hub: Hub, func: Callable[..., None]) -> Callable[..., None]:
    def run(*args: Any) -> None:
        func(hub, *args)

    run.__name__ = func.__name__
    return run


def queue_of(hub: Hub) -> Queue:
    """The hub's queue, built on first use (see `Hub.queue`)."""
    return hub.queue  # type: ignore[no-any-return]


def close_queue(hub: Hub) -> None:
    queue = hub.extras.pop(QUEUE_KEY, None)
    if queue is not None:
        queue.close()


def redis_check(hub: Hub) -> str:
    """`/healthz`'s queue check: can this process reach the Redis broker?"""
    try:
        queue_of(hub).broker.client.ping()  # type: ignore[attr-defined]
    except Exception as exc:  # noqa: BLE001 - a health check reports, it does not raise
        return f"error: {type(exc).__name__}"
    return "ok"
