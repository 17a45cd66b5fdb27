"""`hub worker`: the Dramatiq workers for payouts, outgoing webhooks and mail.

With `[queue] url` set it consumes the Redis queues until SIGINT or SIGTERM; several workers on
several machines may share one Redis and one database (every job is safe to run twice). Without
a queue URL jobs already run inside the process that sends them, so there is nothing to consume.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import threading

import dramatiq

from hub.jobs.queue import queue_of
from hub.runtime import Hub

log = logging.getLogger(__name__)


def run(hub: Hub, processes: int = 1, threads: int = 4, config_path: str | None = None) -> int:
    """Consume with `threads` threads here and `processes - 1` more `hub worker` processes."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    if not hub.config.queue.url:
        print("hub worker: no [queue] url configured; jobs run inside `hub serve` and `hub tick`.")
        return 0
    children = [_spawn(config_path, threads) for _ in range(max(processes, 1) - 1)]
    try:
        return _consume(hub, threads)
    finally:
        for child in children:
            child.terminate()
        for child in children:
            child.wait(60)


def _spawn(config_path: str | None, threads: int) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "hub.cli", "worker", "--threads", str(threads)]
    if config_path:
        command[4:4] = ["--config", config_path]
    return subprocess.Popen(command)


def _consume(hub: Hub, threads: int) -> int:
    queue = queue_of(hub)
    worker = dramatiq.Worker(queue.broker, worker_threads=threads, worker_timeout=500)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    worker.start()
    log.info("hub worker: consuming %s with %d threads",
             ", ".join(sorted(queue.broker.get_declared_queues())), threads)
    stop.wait()
    worker.stop(timeout=30_000)
    queue.broker.close()
    return 0
