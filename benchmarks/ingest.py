"""Benchmark 1 and 5: signed Stripe `invoice.paid` ingest, the hub vs the reference floor.

Starts the floor (`floor_app.py`), the older SQLAlchemy reference and `hub serve` (with a Stripe
API key; many partners, then one hot partner) on the same PostgreSQL,
drives each with wrk over pre-signed bodies of distinct events for attributed customers, and
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


def schema_url(base: str, schema: str, fresh: bool = True) -> str:
    """A URL whose search_path is `schema`, (re)created empty unless `fresh` is False."""
    if fresh:
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


def cpu_seconds(pid: int) -> float:
    """User + system CPU the process (all its threads) has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) / 1024


APPS = ("floor", "sqlalchemy", "hub", "hub_hot")


def run(database: str, duration: int = 20, connections: int = 32, customers: int = 2000,
        events: int = 60000, py_spy: str | None = None,
        apps: tuple[str, ...] = APPS, hub_root: Path = ROOT, queue: str | None = None) -> dict:
    """Each app under the same wrk load, one after the other in the same run; their numbers and,
    for the hub, the ledger afterwards. `floor`: `floor_app.py` (psycopg's async pool, one INSERT
    per event); `sqlalchemy`: `reference_app.py` (the older reference, SQLAlchemy in a thread
    pool); `hub`: `hub serve` with a Stripe API key set, customers spread over many partners;
    `hub_hot`: the same with one partner owning every customer (the hot-row case). `hub_root`:
    the checkout `hub serve` runs from (another one compares a change with its base). `queue`: a
    Redis URL for `[queue] url`, as production runs: `hub serve` then only enqueues the partners'
    commission mails for `hub worker` processes (none runs here) instead of sending them on its
    own in-process worker; without it the hub writes them as .eml files under the run's
    temporary directory, in the same process."""
    require_wrk()
    # PY_SPY_FLAGS="--gil": sample only the thread holding the interpreter (where CPU goes).
    spy_flags = os.environ.get("PY_SPY_FLAGS", "").split()
    tmp = Path(tempfile.mkdtemp(prefix="hub-bench-"))
    results: dict = {}
    for name in apps:
        port = free_port()
        bodies = tmp / f"{name}.txt"
        write_bodies(bodies, events, customers, name)
        env = {**os.environ, "HUB_LOAD_PLUGINS": ""}
        if name == "floor":
            cmd = [sys.executable, str(Path(__file__).parent / "floor_app.py"),
                   schema_url(database, "bench_floor"), SECRET, str(port), "8"]
        elif name == "sqlalchemy":
            cmd = [sys.executable, str(Path(__file__).parent / "reference_app.py"),
                   schema_url(database, "bench_ref"), SECRET, str(port), str(connections)]
        else:
            url = schema_url(database, f"bench_{name}")
            config = tmp / f"{name}.toml"
            # A Stripe API key, as every production install has one: payments of customers the
            # hub has not attributed ask Stripe for the customer (these are all attributed).
            queue_conf = (f'[queue]\nurl = "{queue}"\nnamespace = "hub-bench-{os.getpid()}"\n'
                          if queue else "")
            config.write_text(f'[database]\nurl = "{url}"\npool_size = {connections}\n'
                              f'[connectors.stripe]\nwebhook_secret = "{SECRET}"\n'
                              f'api_key = "sk_test_bench_not_a_real_key"\n'
                              f'[email]\ndir = "{tmp / "mail"}"\n{queue_conf}'
                              f'[programs.crazycall]\nplugin = "crazycall"\n')
            seed_hub(url, config, customers, 1 if name == "hub_hot" else max(customers // 20, 1))
            cmd = [sys.executable, "-m", "hub.cli", "serve", "--config", str(config), "--port",
                   str(port)]
            env["PYTHONPATH"] = str(hub_root)
        proc = subprocess.Popen(cmd, cwd=hub_root if name.startswith("hub") else ROOT, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            wait_up(port, proc)
            spy = (subprocess.Popen(["py-spy", "record", "--nonblocking", *spy_flags, "--pid",
                                     str(proc.pid), "--duration", str(duration), "--format", "raw",
                                     "-o", f"{py_spy}.{name}"],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                   if py_spy and name.startswith("hub") else None)
            cpu = cpu_seconds(proc.pid)
            results[name] = run_wrk(port, bodies, duration, connections)
            # CPU per request of the server process: on a shared machine throughput drifts with
            # the neighbours' load, the work each request costs much less.
            results[name]["cpu_ms"] = ((cpu_seconds(proc.pid) - cpu) * 1000
                                       / max(results[name]["requests"], 1))
            if spy:
                spy.wait(timeout=60)
            results[name]["rss_mb"] = peak_rss_mb(proc.pid)
        finally:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=30)
        if name.startswith("hub"):
            results[name].update(ledger_check(schema_url(database, f"bench_{name}", fresh=False)))
    shutil.rmtree(tmp, ignore_errors=True)
    if queue:
        _drop_namespace(queue, f"hub-bench-{os.getpid()}")
    return results


def _drop_namespace(url: str, namespace: str) -> None:
    """The run's jobs left in Redis (no worker took them)."""
    import redis

    client = redis.Redis.from_url(url)
    keys = list(client.scan_iter(f"{namespace}*"))
    if keys:
        client.delete(*keys)


def ledger_check(url: str) -> dict:
    """What the hub stored: paid invoices, commissions, and events without exactly one."""
    engine = create_engine(url)
    with engine.connect() as conn:
        out = {
            "stored": conn.scalar(text(
                "SELECT count(*) FROM provider_events WHERE type = 'invoice.paid'")),
            "commissions": conn.scalar(text("SELECT count(*) FROM commissions")),
            "events_without_one_commission": conn.scalar(text(
                "SELECT count(*) FROM provider_events e WHERE e.type = 'invoice.paid' AND "
                "(SELECT count(*) FROM commissions c WHERE c.event_id = e.id) <> 1"))}
    engine.dispose()
    return out


def errors_of(result: dict) -> int:
    return int(result["errors"]) + (0 if result["socket_errors"] == "none" else 1)


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
    ap.add_argument("--apps", default=",".join(APPS),
                    help=f"comma-separated subset of {','.join(APPS)}, run in that order")
    ap.add_argument("--hub-root", type=Path, default=ROOT,
                    help="run `hub serve` from this checkout (e.g. the base of a change)")
    ap.add_argument("--py-spy", metavar="FILE",
                    help="profile `hub serve` under the load with py-spy (raw collapsed stacks, "
                         "FILE.hub and FILE.hub_hot)")
    ap.add_argument("--queue", metavar="REDIS_URL",
                    help="[queue] url for hub serve, as in production: it only enqueues the "
                         "commission mails (no hub worker runs) instead of sending them itself")
    args = ap.parse_args()
    r = run(args.database, args.duration, args.connections, args.customers, args.events,
            args.py_spy, tuple(args.apps.split(",")), args.hub_root, args.queue)
    names = [n for n in APPS if n in r]
    floor = r.get("floor")
    print(f"\n{'':24}" + "".join(f"{n:>12}" for n in names))
    print(f"{'requests/s':24}" + "".join(f"{r[n]['rps']:>12.0f}" for n in names))
    if floor:
        print(f"{'ratio to the floor':24}"
              + "".join(f"{r[n]['rps'] / floor['rps']:>12.2f}" for n in names))
    for key, label in (("p50_ms", "p50 ms"), ("p99_ms", "p99 ms")):
        print(f"{label:24}" + "".join(f"{r[n][key]:>12.1f}" for n in names))
    print(f"{'server CPU ms/request':24}" + "".join(f"{r[n]['cpu_ms']:>12.2f}" for n in names))
    if floor:
        print(f"{'CPU ratio (floor / app)':24}"
              + "".join(f"{floor['cpu_ms'] / r[n]['cpu_ms']:>12.2f}" for n in names))
    print(f"{'errors':24}" + "".join(f"{errors_of(r[n]):>12}" for n in names))
    print(f"{'peak RSS MB':24}" + "".join(f"{r[n]['rss_mb']:>12.0f}" for n in names))
    for n in names:
        if n.startswith("hub"):
            print(f"{n}: {r[n]['stored']} invoice.paid events stored, {r[n]['commissions']} "
                  f"commissions, {r[n]['events_without_one_commission']} events without exactly "
                  "one commission")


if __name__ == "__main__":
    main()
