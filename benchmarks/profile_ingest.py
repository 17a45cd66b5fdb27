"""Profile the webhook ingest path in-process: SQL statements per event and a pyinstrument
profile of `connectors.stripe.process` for invoice.paid events of attributed customers.

    python benchmarks/profile_ingest.py [--database URL] [--events 2000] [--html out.html]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from collections import Counter
from pathlib import Path

from sqlalchemy import event

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HUB_LOAD_PLUGINS", "")

from benchmarks.ingest import SECRET, schema_url, seed_hub  # noqa: E402
from connectors import stripe_trigger as st  # noqa: E402
from connectors.stripe import process  # noqa: E402
from hub.app import build_hub  # noqa: E402
from hub.config import load_config  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--database", default=os.environ.get(
        "HUB_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"))
    ap.add_argument("--events", type=int, default=2000)
    ap.add_argument("--customers", type=int, default=500)
    ap.add_argument("--html")
    ap.add_argument("--no-profile", action="store_true")
    ap.add_argument("--cprofile", metavar="FILE", help="write cProfile stats of the loop instead")
    args = ap.parse_args()
    url = schema_url(args.database, "bench_profile")
    config = Path("/tmp/hub-profile.toml")
    config.write_text(f'[database]\nurl = "{url}"\n[connectors.stripe]\n'
                      f'webhook_secret = "{SECRET}"\n[programs.crazycall]\nplugin = "crazycall"\n')
    seed_hub(url, config, args.customers, max(args.customers // 20, 1))
    hub = build_hub(load_config(str(config)))
    now = int(time.time())
    events = [st.event("invoice.paid", st.invoice(
        f"in_p_{i}", customer_id=f"cus_{i % args.customers}", amount=4900,
        subscription_id=f"sub_cus_{i % args.customers}", charge_id=f"ch_p_{i}",
        paid_at=now - args.events + i,
        shape="legacy")) for i in range(args.events)]
    statements: Counter[str] = Counter()

    @event.listens_for(hub.engine, "before_cursor_execute")
    def _count(conn, cursor, statement, params, context, executemany):  # type: ignore[no-untyped-def]
        statements[" ".join(statement.split())[:110]] += 1

    from pyinstrument import Profiler

    profiler = Profiler()
    if args.no_profile or args.cprofile:
        profiler = contextlib.nullcontext()  # type: ignore[assignment]
    if args.cprofile:
        import cProfile

        profiler = cProfile.Profile()  # type: ignore[assignment]
    started, cpu, own = time.perf_counter(), time.process_time(), time.thread_time()
    with profiler:
        for evt in events:
            process(hub, evt)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    own = time.thread_time() - own
    import threading
    print("threads:", [t.name for t in threading.enumerate()],
          f"this thread {own / args.events * 1000:.2f} ms CPU per event")
    total = sum(statements.values())
    print(f"{args.events} events in {elapsed:.2f}s = {args.events / elapsed:.0f}/s, "
          f"{total / args.events:.1f} SQL statements per event, "
          f"{cpu / args.events * 1000:.2f} ms CPU per event in this process")
    for stmt, n in statements.most_common(40):
        print(f"{n / args.events:6.2f}  {stmt}")
    if args.cprofile:
        profiler.dump_stats(args.cprofile)  # type: ignore[attr-defined]
    if args.no_profile or args.cprofile:
        return
    if args.html:
        Path(args.html).write_text(profiler.output_html())
    else:
        print(profiler.output_text(unicode=False, color=False, show_all=False)[:6000])


if __name__ == "__main__":
    main()
