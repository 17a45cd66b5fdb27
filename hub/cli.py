"""The `hub` command: serve, worker, tick, replay, whatif, migrate, and what plugins add
(`register_commands`: the Stripe connector adds `hub trigger`)."""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import uvicorn

from hub import __version__
from hub.app import build_hub, create_app
from hub.clock import parse_instant, utcnow
from hub.config import Config, load_config
from hub.db.audit import record_settings_changes
from hub.errors import HubError, StartupError
from hub.facts import DEFAULT_PROVIDER
from hub.ingest.replay import replay_file
from hub.ingest.whatif import render_text, run_whatif
from hub.jobs import worker
from hub.jobs.tick import run_tick
from hub.registry import plugin_manager
from hub.runtime import Hub


def _hub(args: argparse.Namespace, migrate: bool = True, config: Config | None = None) -> Hub:
    hub = build_hub(config or load_config(args.config), migrate=migrate)
    if migrate:  # a process that may write: audit program settings changed since the last one

        record_settings_changes(hub)
    return hub


def cmd_serve(args: argparse.Namespace) -> int:

    _few_malloc_arenas()
    hub = _hub(args, config=serve_config(args))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    app = create_app(hub)
    _quiet_collector()
    uvicorn.run(app, host=args.host, port=args.port, log_level="info", access_log=False)
    return 0


def serve_config(args: argparse.Namespace) -> Config:
    """The config `hub serve` runs with: without a configured `[server] base_url` (file or
    HUB_BASE_URL), the links and redirects it builds point at the host and port it listens on."""
    host = {"0.0.0.0": "127.0.0.1", "::": "[::1]"}.get(args.host, args.host)
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return load_config(args.config, default_base_url=f"http://{host}:{args.port}")


def _quiet_collector() -> None:
    """Move what start-up built (modules, the app, compiled statements) out of the cyclic
    collector's view, so its full collections under load walk only per-request garbage: those
    walks were pauses of several milliseconds that every request in flight waited through."""
    import gc

    gc.collect()
    gc.freeze()


def _few_malloc_arenas(arenas: int = 2) -> None:
    """glibc gives each thread that allocates its own heap arena (up to 8 per core), and the
    request thread pool touches dozens: under load that was a third of the server's memory.
    Two arenas cost no measurable throughput here. (Same as MALLOC_ARENA_MAX=2; must run before
    the threads start.)"""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    if sys.platform.startswith("linux") and name:
        try:
            ctypes.CDLL(name).mallopt(-8, arenas)  # M_ARENA_MAX
        except (OSError, AttributeError):  # not glibc (musl has no arenas to limit)
            pass


def cmd_migrate(args: argparse.Namespace) -> int:
    hub = _hub(args)
    print(f"database schema is up to date ({hub.engine.url.render_as_string(hide_password=True)})")
    return 0


def cmd_tick(args: argparse.Namespace) -> int:
    hub = _hub(args)
    now = _instant(args.now, "--now") or utcnow()
    result = run_tick(hub, now)
    print(json.dumps({"now": now.isoformat(), **result}, indent=2, default=str))
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    return worker.run(_hub(args), processes=args.processes, threads=args.threads,
                      config_path=args.config)


def cmd_replay(args: argparse.Namespace) -> int:
    hub = _hub(args)
    stats = replay_file(hub, args.file, provider=args.provider, progress=not args.quiet,
                        workers=args.workers)
    print(json.dumps(stats))
    return 0 if not stats.get("errors") else 1


def cmd_whatif(args: argparse.Namespace) -> int:
    changes = _settings_changes(args.set or [])
    since, until = _instant(args.since, "--since"), _instant(args.until, "--until")
    now = _instant(args.now, "--now")
    hub = _hub(args, migrate=False)  # a what-if never writes, not even a migration
    result = run_whatif(hub, args.program, changes, since=since, until=until, now=now,
                        progress=not args.quiet)
    print(json.dumps(result.to_json(), indent=2) if args.json else render_text(result))
    return 0


def _settings_changes(items: list[str]) -> dict[str, str]:
    changes = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise StartupError(f"--set {item!r}: expected key=value, e.g. --set rate=0.25")
        changes[key.strip()] = value.strip()
    return changes


RELATIVE = re.compile(r"^([+-])(\d{1,5})d$")


def _instant(text: str | None, option: str) -> Any:
    """An ISO-8601 date or instant, or days from now: `+31d`, `-7d` (examples that work on
    whatever day they are run)."""
    if text is None:
        return None
    relative = RELATIVE.match(text.strip())
    if relative:
        days = int(relative.group(2)) * (1 if relative.group(1) == "+" else -1)
        return utcnow() + timedelta(days=days)
    try:
        return parse_instant(text)
    except ValueError:
        raise StartupError(f"{option}: {text!r} is not a date (YYYY-MM-DD, ISO-8601, or days "
                           "from now like +31d)") from None


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hub",
                                description="partner hub: affiliate programs from config")
    p.add_argument("--config",
                   help="TOML config file (default: $HUB_CONFIG, else embedded defaults)")
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}",
                   help="print the version and exit")
    sub = p.add_subparsers(dest="command", required=True)

    def command(name: str, func: Any, help_: str) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help_)
        sp.add_argument("--config", default=argparse.SUPPRESS, help="TOML config file")
        sp.set_defaults(func=func)
        return sp

    s = command("serve", cmd_serve, "run the HTTP app (runs pending migrations first)")
    s.add_argument("--host", default="127.0.0.1",
                   help="the address to listen on (default: %(default)s)")
    s.add_argument("--port", type=int, default=8000,
                   help="the port to listen on (default: %(default)s); without a configured "
                        "[server] base_url the hub's links point here")
    w = command("worker", cmd_worker, "run the background job workers")
    w.add_argument("--processes", type=int, default=1,
                   help="worker processes (default: %(default)s)")
    w.add_argument("--threads", type=int, default=4,
                   help="threads per worker process (default: %(default)s)")
    t = command("tick", cmd_tick, "run the time-driven jobs once")
    t.add_argument("--now", help="the moment to run for: ISO-8601, or days from now like +31d "
                   "(default: now)")
    r = command("replay", cmd_replay, "feed exported provider events (JSON lines) through the hub")
    r.add_argument("file", help="JSON lines file, one provider event per line ('-' for stdin)")
    r.add_argument("--provider", default=DEFAULT_PROVIDER,
                   help="the connector whose events the file holds (default: %(default)s)")
    r.add_argument("--quiet", action="store_true", help="no progress bar")
    r.add_argument("--workers", type=int, help="batches written at once on PostgreSQL, each "
                   "about other customers (default: 2; 1 writes one batch after the other)")
    h = command("whatif", cmd_whatif, "replay a program's stored history with changed settings "
                "into a scratch ledger and compare")
    h.add_argument("--program", required=True, help="the program's name (its [programs.<name>])")
    h.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="a changed setting of the program's plugin, e.g. rate=0.25 (repeatable)")
    h.add_argument("--since", help="only commissions earned from this date (inclusive)")
    h.add_argument("--until", help="only commissions earned before this date")
    h.add_argument("--now", help="milestone rules are evaluated as `hub tick --now` would "
                   "(ISO-8601 or +Nd); default: now")
    h.add_argument("--json", action="store_true", help="print the result as JSON")
    h.add_argument("--quiet", action="store_true", help="no progress bar")
    command("migrate", cmd_migrate, "upgrade the database schema")
    plugin_manager().hook.register_commands(command=command)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if not hasattr(args, "config"):
        args.config = None
    try:
        return int(args.func(args))
    except BrokenPipeError:
        # `hub whatif ... | head`: the reader has gone; stop quietly, as other Unix tools do.
        _silence_stdout()
        return 141
    except StartupError as exc:
        print(f"hub: configuration error: {exc}", file=sys.stderr)
        return 2
    except HubError as exc:
        print(f"hub: {exc}", file=sys.stderr)
        return 1


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush does not fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (AttributeError, ValueError, OSError):  # not a real file (e.g. captured in a test)
        pass


if __name__ == "__main__":
    sys.exit(main())
