"""Profile `hub replay` in-process: where a batch's time goes, database versus Python.

Writes the replay benchmark's file (customers with partner codes in three programs, monthly
invoices), replays it with `hub.ingest.replay.replay_file` and prints the wall time, this process's
CPU, and the time spent inside each SQL statement kind (the driver's execute: the server's work plus
the round trip), most first. What is neither SQL nor CPU is the two waiting for each other.

    python benchmarks/profile_replay.py [--events 50000] [--customers 5000] [--database URL]
        [--workers N]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from sqlalchemy import event

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HUB_LOAD_PLUGINS", "")

from benchmarks import replay  # noqa: E402
from benchmarks.ingest import schema_url  # noqa: E402
from hub.app import build_hub  # noqa: E402
from hub.config import load_config  # noqa: E402
from hub.db import bulk  # noqa: E402
from hub.ingest.replay import replay_file  # noqa: E402


def statement_clock(engine: Any) -> tuple[dict[str, float], Counter[str]]:
    """Seconds and executions per statement kind (its first 90 characters) on `engine`."""
    seconds: dict[str, float] = defaultdict(float)
    counts: Counter[str] = Counter()

    @event.listens_for(engine, "before_cursor_execute")
    def _start(conn, cursor, statement, params, context, executemany):  # type: ignore[no-untyped-def]
        conn.info["statement_started"] = time.perf_counter()

    @event.listens_for(engine, "after_cursor_execute")
    def _stop(conn, cursor, statement, params, context, executemany):  # type: ignore[no-untyped-def]
        kind = " ".join(statement.split())[:90]
        seconds[kind] += time.perf_counter() - conn.info.pop("statement_started")
        counts[kind] += 1

    # The COPYs of `hub.db.bulk` go to the driver directly, past the engine's events.
    copy = bulk._copy

    def timed_copy(session, table, names, rows, numbered=False):  # type: ignore[no-untyped-def]
        started = time.perf_counter()
        copy(session, table, names, rows, numbered)
        kind = f"COPY {table} ({', '.join(names)})"[:90]
        seconds[kind] += time.perf_counter() - started
        counts[kind] += 1

    bulk._copy = timed_copy  # type: ignore[assignment]
    return seconds, counts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--database", default=os.environ.get(
        "HUB_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"))
    ap.add_argument("--events", type=int, default=50_000)
    ap.add_argument("--customers", type=int, default=5_000)
    ap.add_argument("--workers", type=int, help="batches in flight (default: the replay's)")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="hub-profile-replay-"))
    path, config = tmp / "events.jsonl", tmp / "hub.toml"
    partners = max(args.customers // 20, len(replay.PROGRAMS))
    replay.write_events(path, args.events, args.customers, partners)
    url = schema_url(args.database, "bench_profile_replay")
    config.write_text(f'[database]\nurl = "{url}"\n' + "".join(
        f'[programs.{p}]\nplugin = "{p}"\n' for p in replay.PROGRAMS))
    hub = build_hub(load_config(str(config)))  # migrates the fresh schema
    replay.seed_partners(url, partners)
    seconds, counts = statement_clock(hub.engine)
    started, cpu = time.perf_counter(), time.process_time()
    stats = replay_file(hub, str(path), progress=False, workers=args.workers)
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    sql = sum(seconds.values())
    print(f"{stats['events']:,} events in {wall:.1f} s = {stats['events'] / wall:,.0f}/s; "
          f"inside SQL {sql:.1f} s ({stats['events'] / sql:,.0f} events/s if Python cost "
          f"nothing), this process's CPU {cpu:.1f} s")
    for kind, spent in sorted(seconds.items(), key=lambda kv: -kv[1])[:15]:
        print(f"{spent:7.2f} s {counts[kind]:6,} x  {kind}")
    hub.engine.dispose()


if __name__ == "__main__":
    main()
