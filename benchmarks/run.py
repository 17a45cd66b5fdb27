"""All five benchmarks, each against its reference in the same run, as one table of ratios.

    python benchmarks/run.py [--quick] [--database postgresql://postgres@127.0.0.1:5432/test]

Needs PostgreSQL (each benchmark works in schemas of its own, `bench_*`, dropped and recreated)
and `wrk` for the ingest benchmark. `--quick` runs sizes that finish in a few minutes on a small
machine; without it, the sizes of the issue (1,000,000 replayed events, 10,000 partners with
1,000,000 ledger entries, 10,000 payouts). A ratio is hub / reference where higher is better
(throughput) and reference / hub where lower is better (time), so 1.0 means "as fast as the
floor" either way. The floors: for ingest `benchmarks/floor_app.py` (Starlette + uvicorn,
psycopg's async pool, `verify_header`, one INSERT .. ON CONFLICT per event), for replay psycopg
alone writing the event rows with COPY (and executemany, and the older SQLAlchemy reference, as
further lines).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HUB_LOAD_PLUGINS", "")

from benchmarks import dashboard, ingest, payout_sweep, replay  # noqa: E402

SIZES = {
    "quick": dict(duration=10, events=20_000, customers=2_000, replay_events=5_000,
                  replay_customers=500, partners=1_000, entries=100_000, payouts=1_000),
    "full": dict(duration=30, events=80_000, customers=2_000, replay_events=1_000_000,
                 replay_customers=100_000, partners=10_000, entries=1_000_000, payouts=10_000),
}
Row = tuple[str, str, str, str, str, str]


def bench_ingest(db: str, size: dict[str, int], queue: str | None = None) -> list[Row]:
    r = ingest.run(db, duration=size["duration"], customers=size["customers"],
                   events=size["events"], queue=queue)
    floor, rows = r["floor"], []
    sql = r["sqlalchemy"]
    rows.append(("1 ingest", "requests/s: SQLAlchemy reference vs floor", f"{floor['rps']:,.0f}",
                 f"{sql['rps']:,.0f}", f"{sql['rps'] / floor['rps']:.2f}", ""))
    # Where the partners' commission mails go: with a Redis queue `hub serve` only enqueues them
    # for `hub worker` (production); without one it renders and writes them itself.
    mail = "mail to Redis" if queue else "mail in-process"
    for name, label in (("hub", f"many partners, {mail}"), ("hub_hot", f"one hot partner, {mail}")):
        hub = r[name]
        ratio = hub["rps"] / floor["rps"]
        errors = ingest.errors_of(hub)
        one_each = hub["events_without_one_commission"] == 0 and hub["stored"] > 0
        rows += [
            ("1 ingest", f"requests/s, API key, {label}", f"{floor['rps']:,.0f}",
             f"{hub['rps']:,.0f}", f"{ratio:.2f}", _mark(ratio >= 0.5, ">= 0.5")),
            ("1 ingest", f"server CPU ms/request, {label}", f"{floor['cpu_ms']:.2f}",
             f"{hub['cpu_ms']:.2f}", f"{floor['cpu_ms'] / hub['cpu_ms']:.2f}", ""),
            ("1 ingest", f"p99 ms, {label}", f"{floor['p99_ms']:.0f}", f"{hub['p99_ms']:.0f}", "",
             _mark(hub["p99_ms"] < 100, "< 100")),
            ("1 ingest", f"errors / 1 commission each, {label}", f"{ingest.errors_of(floor)}",
             f"{errors} / {'yes' if one_each else 'NO'}", "",
             _mark(errors == 0 and one_each, "0 / yes")),
        ]
    rows.append(("5 memory", "hub serve peak RSS MB", f"{floor['rss_mb']:.0f}",
                 f"{r['hub']['rss_mb']:.0f}", "", _mark(r["hub"]["rss_mb"] < 150, "< 150")))
    return rows


def bench_replay(db: str, size: dict[str, int]) -> list[Row]:
    r = replay.run(db, size["replay_events"], size["replay_customers"])
    right = r["commissions"] == r["invoices"] and r["duplicate_keys"] == 0
    hub_rate = r["hub_rate"]
    rows: list[Row] = []
    for key, label in (("floor_copy_rate", "COPY floor"),
                       ("floor_executemany_rate", "executemany floor"),
                       ("reference_rate", "SQLAlchemy reference")):
        ratio = hub_rate / r[key]
        target = (_mark(hub_rate >= 5000 and ratio >= 0.07, ">= 5,000/s, >= 0.07")
                  if key == "floor_copy_rate" else "")
        rows.append(("2 replay", f"events/s ({r['lines']:,} events) vs {label}",
                     f"{r[key]:,.0f}", f"{hub_rate:,.0f}", f"{ratio:.3f}", target))
    rows.append(("2 replay", "peak RSS MB / bar / resumed", "",
                 f"{r['peak_rss_mb']:.0f} / {'yes' if r['progress_bar'] else 'no'} / "
                 f"{'yes' if right else 'NO'}", "", _mark(r["peak_rss_mb"] < 300 and right,
                                                            "< 300")))
    return rows


def bench_dashboard(db: str, size: dict[str, int]) -> list[Row]:
    r = dashboard.run(db, size["partners"], size["entries"])
    label = (f"server p95 ms ({r['entries']:,} entries, largest partner "
             f"{r['largest_partner_entries']:,})")
    return [
        ("3 dashboard", f"API {label}", f"{r['reference_p95_ms']:.1f}", f"{r['api_p95_ms']:.1f}",
         f"{r['reference_p95_ms'] / r['api_p95_ms']:.2f}", _mark(r["api_p95_ms"] < 50, "< 50")),
        ("3 dashboard", f"page {label}", f"{r['reference_p95_ms']:.1f}",
         f"{r['page_p95_ms']:.1f}", f"{r['reference_p95_ms'] / r['page_p95_ms']:.2f}",
         _mark(r["page_p95_ms"] < 50, "< 50")),
    ]


def bench_payouts(db: str, size: dict[str, int]) -> list[Row]:
    r = payout_sweep.run(db, size["payouts"])
    seconds = r["seconds_until_handed_to_paypal"]
    done = r["statuses"].get("paid", 0) == r["partners"] == r["paypal_items"]
    return [("4 payouts", f"s for {r['partners']:,} payouts to PayPal",
             f"{r['reference_seconds']:.2f}", f"{seconds:.1f}",
             f"{r['reference_seconds'] / seconds:.4f}", _mark(seconds < 10 and done, "< 10 s"))]


def _mark(ok: bool, target: str) -> str:
    return f"{target} {'met' if ok else 'MISSED'}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes (CI-like machines)")
    ap.add_argument("--database", default=os.environ.get(
        "HUB_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"))
    ap.add_argument("--only", help="comma-separated subset: ingest,replay,dashboard,payouts")
    ap.add_argument("--queue", metavar="REDIS_URL", default=os.environ.get("HUB_BENCH_QUEUE_URL"),
                    help="ingest: [queue] url of hub serve, as in production (the commission "
                         "mails go to Redis for hub worker instead of being sent in-process)")
    args = ap.parse_args()
    ingest.require_wrk()
    size = SIZES["quick" if args.quick else "full"]
    chosen = (args.only or "ingest,replay,dashboard,payouts").split(",")
    benches = {"ingest": bench_ingest, "replay": bench_replay, "dashboard": bench_dashboard,
               "payouts": bench_payouts}
    rows: list[Row] = []
    started = time.perf_counter()
    for name in chosen:
        print(f"running {name} ...", file=sys.stderr, flush=True)
        rows += (bench_ingest(args.database, size, args.queue) if name == "ingest"
                 else benches[name](args.database, size))
    print_table(rows, f"{'quick' if args.quick else 'full'} sizes, {os.cpu_count()} CPUs, "
                      f"{time.perf_counter() - started:.0f} s")


def print_table(rows: list[Row], note: str) -> None:
    header: Row = ("benchmark", "measure", "reference", "hub", "ratio", "target")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(6)]
    line = "  ".join("-" * w for w in widths)
    print(f"\n{note}\n{line}")
    for row in [header, *rows]:
        print("  ".join(cell.ljust(w) if i < 2 else cell.rjust(w) if i < 5 else cell.ljust(w)
                        for i, (cell, w) in enumerate(zip(row, widths, strict=True))))
        if row is header:
            print(line)
    print(line)


if __name__ == "__main__":
    main()
