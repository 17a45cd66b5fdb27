"""Profile `hub replay` in-process: where a batch's time goes, database versus Python.

Writes the replay benchmark's file (customers with partner codes in three programs, monthly
invoices), replays it with `hub.ingest.replay.replay_file` and prints the wall time, this process's
CPU, and the time spent inside each SQL statement kind (the driver's execute: the server's work plus
the round trip), most first. What is neither SQL nor CPU is the two waiting for each other.

    python benchmarks/profile_replay.py [--events 50000] [--customers 5000] [--database URL]
        [--workers N] [--batch N]
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
from hub.ingest.replay import BATCH, replay_file  # noqa: E402


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

    return seconds, counts


def backend_clock(engine: Any) -> list[int]:
    """The server process id of each connection `engine` opens (PostgreSQL on this machine)."""
    pids: list[int] = []

    @event.listens_for(engine, "connect")
    def _connected(dbapi_connection, record):  # type: ignore[no-untyped-def]
        with dbapi_connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            pids.append(cursor.fetchone()[0])

    return pids


def cpu_seconds(pids: list[int]) -> float | None:
    """User + system CPU of the processes `pids` so far; None if one is not readable here."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--database", default=os.environ.get(
        "HUB_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"))
    ap.add_argument("--events", type=int, default=50_000)
    ap.add_argument("--customers", type=int, default=5_000)
    ap.add_argument("--workers", type=int, help="batches in flight (default: the replay's)")
    ap.add_argument("--batch", type=int, default=BATCH, help="events per batch (%(default)s)")
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
    hub.engine.dispose()  # connections from here on are counted by `backend_clock`
    pids = backend_clock(hub.engine)
    seconds, counts = statement_clock(hub.engine)
    started, cpu = time.perf_counter(), time.process_time()
    stats = replay_file(hub, str(path), progress=False, workers=args.workers,
                        batch=args.batch)
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    sql = sum(seconds.values())
    server = cpu_seconds(pids)
    n = stats["events"]
    per_event = "" if server is None else (
        f", the server's CPU for it {server:.1f} s (CPU per event: {cpu / n * 1e6:,.0f} + "
        f"{server / n * 1e6:,.0f} µs)")
    print(f"{stats['events']:,} events in {wall:.1f} s = {stats['events'] / wall:,.0f}/s; "
          f"inside SQL {sql:.1f} s ({stats['events'] / sql:,.0f} events/s if Python cost "
          f"nothing), this process's CPU {cpu:.1f} s{per_event}")
    for kind, spent in sorted(seconds.items(), key=lambda kv: -kv[1])[:15]:
        print(f"{spent:7.2f} s {counts[kind]:6,} x  {kind}")
    hub.engine.dispose()


if __name__ == "__main__":
    main()
