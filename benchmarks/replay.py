"""Benchmark 2: `hub replay` of exported Stripe events vs a batch insert of the same rows.

The file holds, per customer, a `customer.created` naming a partner code (partners of three
programs) and monthly `invoice.paid` events. The hub's replay is interrupted (SIGINT) a third of
the way through and re-run to the end, as an operator would resume it; its rate counts both
runs. The reference reads the same file and batch-inserts the event rows (`ON CONFLICT DO
NOTHING`, 1,000 per statement) into a table of its own on the same PostgreSQL; the floors do the
same with psycopg alone: `executemany` of the INSERT, and `COPY`, 1,000 rows a commit.

    python benchmarks/replay.py [--events 1000000] [--customers 100000]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.ingest import schema_url  # noqa: E402
from connectors import stripe_trigger as st  # noqa: E402

PROGRAMS = ("crazycall", "callpage", "odoopbx")


def write_events(path: Path, events: int, customers: int, partners: int) -> int:
    """Returns how many invoice.paid events the file holds."""
    start = int((datetime.now(UTC) - timedelta(days=800)).timestamp())
    invoices = 0
    per_customer = max(events // customers - 1, 1)
    with path.open("w") as fh:
        for c in range(customers):
            cus = f"cus_{c}"
            code = f"code{c % partners}"
            fh.write(json.dumps(st.event("customer.created", {
                "id": cus, "object": "customer", "email": f"c{c}@bench.test",
                "metadata": {"partner_code": code}}, created=start + c)) + "\n")
            for month in range(per_customer):
                paid = start + c + (month + 1) * 30 * 86400
                fh.write(json.dumps(st.event("invoice.paid", st.invoice(
                    f"in_{c}_{month}", customer_id=cus, amount=4900, subscription_id=f"sub_{cus}",
                    charge_id=f"ch_{c}_{month}", paid_at=paid, shape="legacy"),
                    created=paid)) + "\n")
                invoices += 1
    return invoices


def seed_partners(url: str, partners: int) -> None:
    engine = create_engine(url)
    now = datetime.now(UTC) - timedelta(days=900)
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO partners (id, program, kind, status, code, email, name, payout_method, "
            "created_at) VALUES (:id, :program, 'partner', 'active', :code, :email, '', 'paypal', "
            ":now)"), [{"id": f"prt_{i}", "program": PROGRAMS[i % len(PROGRAMS)],
                        "code": f"code{i}", "email": f"p{i}@bench.test", "now": now}
                       for i in range(partners)])
    engine.dispose()


def reference(url: str, path: Path) -> float:
    """Seconds to read the file and batch-insert its event rows through SQLAlchemy (the older
    reference, kept as a second line)."""
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text(EVENTS_TABLE.format(table="ref_events")))
    insert = text("INSERT INTO ref_events (provider, event_id, type, occurred_at, payload) "
                  "VALUES ('stripe', :id, :type, to_timestamp(:created), :payload) "
                  "ON CONFLICT DO NOTHING")
    started = time.perf_counter()
    rows: list[dict[str, object]] = []
    with path.open() as fh, engine.connect() as conn:
        for line in fh:
            event = json.loads(line)
            rows.append({"id": event["id"], "type": event["type"],
                         "created": event["created"], "payload": line})
            if len(rows) == 1000:
                conn.execute(insert, rows)
                conn.commit()
                rows = []
        if rows:
            conn.execute(insert, rows)
            conn.commit()
    elapsed = time.perf_counter() - started
    engine.dispose()
    return elapsed


EVENTS_TABLE = ("CREATE TABLE IF NOT EXISTS {table} (id bigserial PRIMARY KEY, "
                "provider text NOT NULL, event_id text NOT NULL, type text NOT NULL, "
                "occurred_at timestamptz NOT NULL, payload text NOT NULL, "
                "UNIQUE (provider, event_id))")


def floor(url: str, path: Path, how: str) -> float:
    """The floor of a replay: seconds to read the file and write its event rows with psycopg
    alone, 1,000 rows and one commit per batch: `executemany` of an INSERT .. ON CONFLICT DO
    NOTHING (psycopg pipelines it), or `copy` (COPY .. FROM STDIN into the same table)."""
    dsn = url.replace("postgresql+psycopg://", "postgresql://", 1)
    table = f"floor_{how}_events"
    with psycopg.connect(dsn) as conn:
        conn.execute(EVENTS_TABLE.format(table=table))
        conn.commit()
        insert = (f"INSERT INTO {table} (provider, event_id, type, occurred_at, payload) "
                  "VALUES ('stripe', %s, %s, to_timestamp(%s), %s) ON CONFLICT DO NOTHING")
        copy = f"COPY {table} (provider, event_id, type, occurred_at, payload) FROM STDIN"
        started = time.perf_counter()
        rows: list[tuple[object, ...]] = []

        def flush() -> None:
            if how == "copy":
                with conn.cursor() as cur, cur.copy(copy) as out:
                    for row in rows:
                        out.write_row(row)
            else:
                with conn.cursor() as cur:
                    cur.executemany(insert, rows)
            conn.commit()
            rows.clear()

        with path.open() as fh:
            for line in fh:
                event = json.loads(line)
                rows.append(("stripe", event["id"], event["type"],
                             datetime.fromtimestamp(event["created"], UTC), line)
                            if how == "copy" else
                            (event["id"], event["type"], event["created"], line))
                if len(rows) == 1000:
                    flush()
            if rows:
                flush()
        return time.perf_counter() - started


def hub_replay(config: Path, path: Path, url: str, interrupt_at: int) -> dict[str, float]:
    """Run `hub replay`, SIGINT it once `interrupt_at` events are stored, run it again."""
    env = {**os.environ, "HUB_LOAD_PLUGINS": ""}
    cmd = [sys.executable, "-m", "hub.cli", "replay", str(path), "--config", str(config)]
    engine = create_engine(url)
    started = time.perf_counter()
    first = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    rss = 0.0
    while first.poll() is None:
        time.sleep(0.5)
        rss = max(rss, _hwm_mb(first.pid))
        with engine.connect() as conn:
            if conn.scalar(text("SELECT count(*) FROM provider_events")) >= interrupt_at:
                first.send_signal(signal.SIGINT)
                break
    first.wait()
    interrupted = time.perf_counter() - started
    with engine.connect() as conn:
        stored = conn.scalar(text("SELECT count(*) FROM provider_events"))
    with tempfile.TemporaryFile("w+") as err:
        second = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=err,
                                  text=True)
        while second.poll() is None:
            rss = max(rss, _hwm_mb(second.pid))
            time.sleep(0.2)
        err.seek(0)
        stderr = err.read()
    if second.returncode:
        raise RuntimeError(stderr[-2000:])
    elapsed = time.perf_counter() - started
    with engine.connect() as conn:
        counts = conn.execute(text(
            "SELECT (SELECT count(*) FROM provider_events), "
            "(SELECT count(*) FROM commissions WHERE reverses_id IS NULL), "
            "(SELECT count(*) FROM (SELECT 1 FROM commissions GROUP BY program, partner_id, key "
            "HAVING count(*) > 1) d)")).one()
    engine.dispose()
    progress_bar = "replay [" in stderr
    return {"seconds": elapsed, "interrupted_after": interrupted, "stored_at_interrupt": stored,
            "events": counts[0], "commissions": counts[1], "duplicate_keys": counts[2],
            "peak_rss_mb": rss, "progress_bar": progress_bar}


def _hwm_mb(pid: int) -> float:
    """The process's peak resident set so far (VmHWM), 0 once it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    match = re.search(r"VmHWM:\s+(\d+) kB", status)
    return int(match.group(1)) / 1024 if match else 0.0


def run(database: str, events: int, customers: int) -> dict[str, object]:
    tmp = Path(tempfile.mkdtemp(prefix="hub-replay-"))
    path = tmp / "events.jsonl"
    partners = max(customers // 20, len(PROGRAMS))
    invoices = write_events(path, events, customers, partners)
    total = sum(1 for _ in path.open())
    ref_url, hub_url = (schema_url(database, "bench_replay_ref"),
                        schema_url(database, "bench_replay"))
    ref_seconds = reference(ref_url, path)
    floors = {how: total / floor(ref_url, path, how) for how in ("executemany", "copy")}
    config = tmp / "hub.toml"
    config.write_text(f'[database]\nurl = "{hub_url}"\n' + "".join(
        f'[programs.{p}]\nplugin = "{p}"\n' for p in PROGRAMS))
    subprocess.run([sys.executable, "-m", "hub.cli", "migrate", "--config", str(config)],
                   check=True, cwd=ROOT, env={**os.environ, "HUB_LOAD_PLUGINS": ""},
                   capture_output=True)
    seed_partners(hub_url, partners)
    hub = hub_replay(config, path, hub_url, interrupt_at=total // 3)
    return {"lines": total, "invoices": invoices, "reference_rate": total / ref_seconds,
            "floor_executemany_rate": floors["executemany"], "floor_copy_rate": floors["copy"],
            "hub_rate": total / hub["seconds"], **hub}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--database", default=os.environ.get(
        "HUB_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"))
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--customers", type=int, default=100_000)
    args = ap.parse_args()
    result = run(args.database, args.events, args.customers)
    for key, value in result.items():
        print(f"{key:22} {value:,.1f}" if isinstance(value, float) else f"{key:22} {value}")


if __name__ == "__main__":
    main()
