"""`hub worker`: the Dramatiq workers for payouts and outgoing webhooks.

With `[queue] url` set it consumes the Redis queues until SIGINT or SIGTERM; several workers on
several machines may share one Redis and one database (every job is safe to run twice). Without
a queue URL jobs already run inside the process that sends them, so there is nothing to consume.
"""

from __future__ import annotations

import logging
import signal
import threading

import dramatiq

from .queue import queue_of
from .runtime import Hub

log = logging.getLogger(__name__)


def run(hub: Hub, processes: int = 1, threads: int = 4) -> int:
    """Run `threads` worker threads in this process (start more processes for more)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    if not hub.config.queue.url:
        print("hub worker: no [queue] url configured; jobs run inside `hub serve` and `hub tick`.")
        return 0
    if processes != 1:
        log.warning("--processes is ignored: run one `hub worker` per process you want")
    queue = queue_of(hub)
    worker = dramatiq.Worker(queue.broker, worker_threads=threads, worker_timeout=500)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    worker.start()
    log.info("hub worker: consuming %s with %d threads", ", ".join(sorted(queue.broker.get_declared_queues())), threads)
    stop.wait()
    worker.stop(timeout=30_000)
    queue.broker.close()
    return 0
