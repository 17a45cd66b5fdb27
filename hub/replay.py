"""`hub replay`: exported provider events (JSON lines) through the same path as webhooks."""

from __future__ import annotations

import json
import sys
from typing import Any

from .errors import StartupError
from .progress import Progress
from .runtime import Hub


def replay_file(hub: Hub, path: str, *, provider: str = "stripe",
                progress: bool = True) -> dict[str, Any]:
    connector = hub.connector(provider)
    if connector is None or connector.process is None:
        raise StartupError(f"no connector {provider!r} that can replay events")
    total = None if path == "-" else _count_lines(path)
    bar = Progress(total, "replay") if progress else None
    stats = {"events": 0, "new": 0, "duplicates": 0, "errors": 0}
    stream = sys.stdin if path == "-" else open(path, encoding="utf-8")
    try:
        for number, line in enumerate(stream, 1):
            if not line.strip():
                continue
            stats["events"] += 1
            try:
                event = json.loads(line)
                new = connector.process(hub, event)
            except (ValueError, KeyError, TypeError) as exc:
                stats["errors"] += 1
                print(f"line {number}: skipped: {type(exc).__name__}: {exc}", file=sys.stderr)
                continue
            stats["new" if new else "duplicates"] += 1
            if bar:
                bar.advance()
    finally:
        if stream is not sys.stdin:
            stream.close()
        if bar:
            bar.close()
    return stats


def _count_lines(path: str) -> int:
    with open(path, "rb") as fh:
        return sum(1 for _ in fh)
