"""Real `hub serve` / `hub worker` / `hub tick` subprocesses on a shared database and Redis, for
the tests about several processes (a crashed worker, scale-out)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.conftest import ADMIN_TOKEN, WEBHOOK_SECRET
from tests.test_payouts_redis import REDIS_URL

ROOT = Path(__file__).resolve().parents[1]
CRAZYCALL_TOML = '[programs.crazycall]\nplugin = "crazycall"\ncurrency = "USD"\n'


def write_config(path: Path, database: str, prefix: str, paypal_base: str,
                 programs: str = CRAZYCALL_TOML) -> Path:
    path.write_text(f'''
[database]
url = "{database}"
[queue]
url = "{REDIS_URL}"
namespace = "{prefix}"
min_backoff_ms = 50
max_backoff_ms = 200
stale_seconds = 0
[server]
admin_token = "{ADMIN_TOKEN}"
[connectors.stripe]
webhook_secret = "{WEBHOOK_SECRET}"
[connectors.paypal]
mode = "sandbox"
client_id = "client-id"
client_secret = "client-secret"
webhook_id = "WH-1"
api_base = "{paypal_base}"
timeout_seconds = 30
{programs}''')
    return path


def _env() -> dict[str, str]:
    return {**os.environ, "HUB_LOAD_PLUGINS": "", "PYTHONPATH": str(ROOT)}


def start_worker(config: Path, threads: int = 1) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "hub.cli", "worker", "--config", str(config),
                             "--threads", str(threads)], cwd=ROOT, env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(config: Path) -> tuple[subprocess.Popen[bytes], str]:
    """`hub serve` on a free port; returns the process and its base URL once it answers."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "hub.cli", "serve", "--config", str(config),
                             "--port", str(port)], cwd=ROOT, env=_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return proc, f"http://127.0.0.1:{port}"


def wait_serving(proc: subprocess.Popen[bytes], url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"hub serve exited: {proc.stderr.read().decode()[-2000:]}")
        try:
            httpx.get(f"{url}/healthz", timeout=2)
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise RuntimeError(f"hub serve at {url} did not start")


def run_tick(config: Path, now: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "hub.cli", "tick", "--config", str(config),
                             "--now", now], cwd=ROOT, env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)
