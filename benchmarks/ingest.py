"""Benchmark 1 and 5: signed Stripe `invoice.paid` ingest, the hub vs the reference floor.

Starts the reference app (verify + insert event row) and `hub serve` on the same PostgreSQL,
drives both with wrk over pre-signed bodies of distinct events for attributed customers, and
prints throughput, latency, errors, commissions booked and the hub's peak RSS.

    python benchmarks/ingest.py [--database URL] [--duration 20] [--connections 32]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from connectors import stripe_trigger as st  # noqa: E402

SECRET = "whsec_bench_" + "b" * 20


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def schema_url(base: str, schema: str) -> str:
    engine = create_engine(base.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as conn:
        conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    engine.dispose()
    sep = "&" if "?" in base else "?"
    return (f"{base.replace('postgresql://', 'postgresql+psycopg://', 1)}"
            f"{sep}options=-csearch_path%3D{schema}")


def wait_up(port: int, proc: subprocess.Popen) -> None:
    for _ in range(300):
        if proc.poll() is not None:
            raise RuntimeError(f"server on {port} exited with {proc.returncode}")
        try:
            httpx.post(f"http://127.0.0.1:{port}/webhooks/stripe", content=b"{}", timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"server on {port} did not start")


def write_bodies(path: Path, count: int, customers: int, tag: str) -> None:
    now = int(time.time())
    with path.open("w") as fh:
        for i in range(count):
            cus = f"cus_{i % customers}"
            evt = st.event("invoice.paid", st.invoice(
                f"in_{tag}_{i}", customer_id=cus, amount=4900, subscription_id=f"sub_{cus}",
                charge_id=f"ch_{tag}_{i}", paid_at=now - count + i, shape="legacy"))
            body, headers = st.signed_request(evt, SECRET, now)
            fh.write(f"{headers['Stripe-Signature']}\t{body}\n")


def run_wrk(port: int, bodies: Path, duration: int, connections: int, threads: int = 2) -> dict:
    out = subprocess.run(
        ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{duration}s", "--latency",
         "-s", str(Path(__file__).parent / "bodies.lua"), f"http://127.0.0.1:{port}",
         "--", str(threads)],
        capture_output=True, text=True, env={**os.environ, "BODIES_FILE": str(bodies)}, check=True
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    p99 = _ms(re.search(r"99%\s+([\d.]+\w+)", out).group(1))
    p50 = _ms(re.search(r"50%\s+([\d.]+\w+)", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return {"rps": rps, "requests": total, "p50_ms": p50, "p99_ms": p99,
            "errors": int(non2xx.group(1)) if non2xx else 0,
            "socket_errors": errors.group(1) if errors else "none"}


def _ms(value: str) -> float:
    num = float(re.match(r"[\d.]+", value).group(0))
    unit = value[len(re.match(r"[\d.]+", value).group(0)):]
    return num * {"us": 0.001, "ms": 1, "s": 1000}[unit]


def seed_hub(url: str, config: Path, customers: int, partners: int) -> None:
    env = {**os.environ, "HUB_LOAD_PLUGINS": ""}
    subprocess.run([sys.executable, "-m", "hub.cli", "migrate", "--config", str(config)],
                   check=True, env=env, cwd=ROOT, capture_output=True)
    engine = create_engine(url)
    now = datetime.now(UTC) - timedelta(days=2)  # known before the benchmark's invoices
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO partners (id, program, kind, status, code, email, name, "
                          "payout_method, created_at) VALUES (:id, 'crazycall', 'partner', "
                          "'active', :code, :email, '', 'paypal', :now)"),
                     [{"id": f"prt_{i}", "code": f"code{i}", "email": f"p{i}@bench.test",
                       "now": now}
                      for i in range(partners)])
        conn.execute(text("INSERT INTO customers (id, provider, ref, email, partner_code, "
                          "first_seen_at) VALUES (:id, 'stripe', :ref, :email, :code, :now)"),
                     [{"id": i + 1, "ref": f"cus_{i}", "email": f"c{i}@bench.test",
                       "code": f"code{i % partners}", "now": now} for i in range(customers)])
        conn.execute(text("INSERT INTO referrals (program, partner_id, customer_id, source, "
                          "attributed_at, self_referral) VALUES ('crazycall', :p, :c, 'code', "
                          ":now, false)"),
                     [{"p": f"prt_{i % partners}", "c": i + 1, "now": now}
                      for i in range(customers)])
        conn.execute(text("SELECT setval(pg_get_serial_sequence('customers', 'id'), :n)"),
                     {"n": customers})
    engine.dispose()


def peak_rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) / 1024


def run(database: str, duration: int = 20, connections: int = 32, customers: int = 2000,
        events: int = 60000, py_spy: str | None = None) -> dict:
    """Both apps under the same wrk load, one after the other; their numbers and the hub's
    ledger afterwards."""
    require_wrk()
    tmp = Path(tempfile.mkdtemp(prefix="hub-bench-"))
    ref_url = schema_url(database, "bench_ref")
    hub_url = schema_url(database, "bench_hub")
    config = tmp / "hub.toml"
    # Both apps keep one pooled connection per concurrent request (no connect/close churn).
    config.write_text(f'[database]\nurl = "{hub_url}"\npool_size = {connections}\n'
                      f'[connectors.stripe]\nwebhook_secret = "{SECRET}"\n'
                      f'[programs.crazycall]\nplugin = "crazycall"\n')
    seed_hub(hub_url, config, customers, max(customers // 20, 1))
    results = {}
    for name in ("reference", "hub"):
        port = free_port()
        bodies = tmp / f"{name}.txt"
        write_bodies(bodies, events, customers, name)
        cmd = ([sys.executable, str(Path(__file__).parent / "reference_app.py"), ref_url, SECRET,
                str(port), str(connections)]
               if name == "reference" else
               [sys.executable, "-m", "hub.cli", "serve", "--config", str(config), "--port",
                str(port)])
        proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, "HUB_LOAD_PLUGINS": ""},
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            wait_up(port, proc)
            spy = (subprocess.Popen(["py-spy", "record", "--nonblocking", "--pid", str(proc.pid),
                                     "--duration", str(duration), "--format", "raw", "-o", py_spy],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                   if py_spy and name == "hub" else None)
            results[name] = run_wrk(port, bodies, duration, connections)
            if spy:
                spy.wait(timeout=60)
            results[name]["rss_mb"] = peak_rss_mb(proc.pid)
        finally:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=30)
    engine = create_engine(hub_url)
    with engine.connect() as conn:
        results["stored"] = conn.scalar(text(
            "SELECT count(*) FROM provider_events WHERE type = 'invoice.paid'"))
        results["commissions"] = conn.scalar(text("SELECT count(*) FROM commissions"))
        results["events_without_one_commission"] = conn.scalar(text(
            "SELECT count(*) FROM provider_events e WHERE e.type = 'invoice.paid' AND "
            "(SELECT count(*) FROM commissions c WHERE c.event_id = e.id) <> 1"))
    engine.dispose()
    shutil.rmtree(tmp, ignore_errors=True)
    return results


def require_wrk() -> None:
    if not shutil.which("wrk"):
        sys.exit("benchmark 1 needs wrk (the HTTP load generator): apt-get install -y wrk "
                 "(Debian/Ubuntu), brew install wrk (macOS), or build it from "
                 "https://github.com/wg/wrk")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--database", default=os.environ.get(
        "HUB_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"))
    ap.add_argument("--duration", type=int, default=20)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--customers", type=int, default=2000)
    ap.add_argument("--events", type=int, default=60000)
    ap.add_argument("--py-spy", metavar="FILE",
                    help="profile `hub serve` under the load with py-spy (raw collapsed stacks)")
    args = ap.parse_args()
    r = run(args.database, args.duration, args.connections, args.customers, args.events,
            args.py_spy)
    ref, hub = r["reference"], r["hub"]
    print(f"\n{'':22}{'reference':>12}{'hub':>12}{'ratio':>8}")
    print(f"{'requests/s':22}{ref['rps']:>12.0f}{hub['rps']:>12.0f}{hub['rps'] / ref['rps']:>8.2f}")
    print(f"{'p50 ms':22}{ref['p50_ms']:>12.1f}{hub['p50_ms']:>12.1f}")
    print(f"{'p99 ms':22}{ref['p99_ms']:>12.1f}{hub['p99_ms']:>12.1f}")
    print(f"{'non-2xx':22}{ref['errors']:>12}{hub['errors']:>12}")
    print(f"{'peak RSS MB':22}{ref['rss_mb']:>12.0f}{hub['rss_mb']:>12.0f}")
    print(f"hub: {r['stored']} invoice.paid events stored, {r['commissions']} commissions, "
          f"{r['events_without_one_commission']} events without exactly one commission")


if __name__ == "__main__":
    main()
