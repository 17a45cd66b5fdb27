"""`hub replay`: exported provider events (JSON lines) through the same path as webhooks.

Events are applied in batches, one transaction per batch, by the same code a webhook runs
(`hub.ingest.batch.apply_batch`, set-based for the everyday paid invoice): a batch first asks which
of its event ids are stored already, so a re-run after an interrupt skips the done part quickly
(resuming is re-running). A batch that fails is rolled back and replayed one event per transaction,
exactly as before batching, so a bad event costs only itself. On PostgreSQL the planner's statistics
are refreshed as the replay grows the tables (`hub.db.statistics`), and two batches about different
customers are written at once while the next is parsed (`hub.ingest.replay_pipeline`).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from typing import IO, Any

from hub.db.statistics import FreshStatistics
from hub.errors import StartupError
from hub.facts import DEFAULT_PROVIDER
from hub.ingest.batch import apply_batch
from hub.ingest.events import ingest, looked_up, stored_event_ids
from hub.ingest.replay_pipeline import (
    WORKERS,
    Entry,
    Pipeline,
    batch_in_transaction,
    can_pipeline,
    entry,
    fast_commit,
)
from hub.ops.progress import Progress
from hub.runtime import Hub

BATCH = 500
SKIPPED = (ValueError, KeyError, TypeError)


def replay_file(hub: Hub, path: str, *, provider: str = DEFAULT_PROVIDER,
                progress: bool = True, batch: int = BATCH,
                workers: int | None = None) -> dict[str, Any]:
    """Replay the JSON lines at `path` ("-": standard input). `workers`: batches in flight at
    once (default: two where `can_pipeline`, else one)."""
    connector = hub.connector(provider)
    if connector is None or connector.process is None:
        raise StartupError(f"no connector {provider!r} that can replay events")
    total = None if path == "-" else _count_lines(path)
    bar = Progress(total, "replay") if progress else None
    stats = {"events": 0, "new": 0, "duplicates": 0, "errors": 0}
    statistics = FreshStatistics(hub.engine)
    if workers is None:
        workers = WORKERS if can_pipeline(hub, connector) else 1
    stream = sys.stdin if path == "-" else open(path, encoding="utf-8")
    try:
        if workers > 1 and connector.prepare is not None:
            _pipelined(hub, connector, provider, _chunks(stream, batch), batch, workers, stats,
                       statistics, bar)
        else:
            for chunk in _chunks(stream, batch if connector.prepare else 1):
                new_before = stats["new"]
                _replay_chunk(hub, connector, provider, chunk, stats)
                statistics.written(stats["new"] - new_before)
                if bar:
                    bar.advance(len(chunk))
    finally:
        if stream is not sys.stdin:
            stream.close()
        if bar:
            bar.close()
    return stats


def _chunks(stream: IO[str], size: int) -> Iterator[list[tuple[int, str]]]:
    chunk: list[tuple[int, str]] = []
    for number, line in enumerate(stream, 1):
        if line.strip():
            chunk.append((number, line))
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _pipelined(hub: Hub, connector: Any, provider: str, chunks: Iterator[list[tuple[int, str]]],
               batch: int, workers: int, stats: dict[str, int], statistics: FreshStatistics,
               bar: Progress | None) -> None:
    """The replay with `workers` batches in flight (see `hub.ingest.replay_pipeline`); this
    thread parses and prepares the lines and keeps the counts."""

    def apply(entries: list[Entry]) -> dict[str, int]:
        try:
            return batch_in_transaction(hub, connector, entries)
        except Exception:  # noqa: BLE001 - redone one event per transaction, which reports it
            counts = {"new": 0, "duplicates": 0, "errors": 0}
            for e in entries:
                _one(hub, connector, e.number, e.event, e.raw, counts)
            return counts

    def done(counts: dict[str, int], lines: int) -> None:
        for key, value in counts.items():
            stats[key] += value
        statistics.written(counts.get("new", 0))
        if bar:
            bar.advance(lines)

    pipeline = Pipeline(batch, workers, apply, done)
    try:
        for chunk in chunks:
            stats["events"] += len(chunk)
            pipeline.add(_entries(hub, connector, provider, chunk, stats, bar))
        pipeline.finish()
    finally:
        pipeline.close()


def _entries(hub: Hub, connector: Any, provider: str, chunk: list[tuple[int, str]],
             stats: dict[str, int], bar: Progress | None) -> list[Entry]:
    """A chunk's lines parsed and prepared, but for the events stored already (a resumed
    replay skips its done part without preparing it) and the lines that fail, which are
    counted here. An event stored by a batch still in flight is found a duplicate when its
    own batch inserts it."""
    parsed = _parsed(chunk, stats, bar)
    ids = [e.get("id") for _, e, _ in parsed if isinstance(e, dict)]
    with hub.sessions() as session:
        stored = stored_event_ids(session, provider, [i for i in ids if isinstance(i, str)])
    entries = []
    for number, event, raw in parsed:
        if isinstance(event, dict) and event.get("id") in stored:
            stats["duplicates"] += 1
            if bar:
                bar.advance(1)
            continue
        try:
            entries.append(entry(number, event, raw, connector.prepare(hub, event, None, raw)))
        except SKIPPED as exc:
            _skip(stats, number, exc)
            if bar:
                bar.advance(1)
    return entries


def _replay_chunk(hub: Hub, connector: Any, provider: str, chunk: list[tuple[int, str]],
                  stats: dict[str, int]) -> None:
    stats["events"] += len(chunk)
    events = _parsed(chunk, stats, None)
    if connector.prepare is None:
        for number, event, raw in events:
            _one(hub, connector, number, event, raw, stats)
        return
    try:
        counts = _batch(hub, connector, provider, events)
    except Exception:  # noqa: BLE001 - redone one event per transaction, which reports it
        for number, event, raw in events:
            _one(hub, connector, number, event, raw, stats)
        return
    for key, value in counts.items():
        stats[key] += value


def _parsed(chunk: list[tuple[int, str]], stats: dict[str, int],
            bar: Progress | None) -> list[tuple[int, Any, str]]:
    """The chunk's lines decoded, each with its number and its text; a line that is not JSON is
    counted as skipped. The text is stored as the event's payload, as a webhook's body is (not
    re-encoded)."""
    parsed = []
    for number, line in chunk:
        try:
            parsed.append((number, json.loads(line), line.strip()))
        except ValueError as exc:
            _skip(stats, number, exc)
            if bar:
                bar.advance(1)
    return parsed


def _batch(hub: Hub, connector: Any, provider: str,
           events: list[tuple[int, Any, str]]) -> dict[str, int]:
    """Apply a batch in one transaction; raises (rolling all of it back) on any failure."""
    counts = {"new": 0, "duplicates": 0}
    with hub.transaction() as session:
        fast_commit(session)
        ids = [e.get("id") for _, e, _ in events if isinstance(e, dict)]
        known = stored_event_ids(session, provider, [i for i in ids if isinstance(i, str)])
        items = []
        for _, event, raw in events:
            if isinstance(event, dict) and event.get("id") in known:
                counts["duplicates"] += 1
                continue
            items.append(connector.prepare(hub, event, session, raw))
        for new in apply_batch(hub, session, items):
            counts["new" if new else "duplicates"] += 1
    return counts


def _one(hub: Hub, connector: Any, number: int, event: Any, raw: str,
         stats: dict[str, int]) -> None:
    try:
        if connector.prepare is None:
            new = connector.process(hub, event)
        else:
            item = looked_up(connector.prepare(hub, event, None, raw))
            new = ingest(hub, item.provider, item.event_id, item.type, item.occurred_at,
                         item.payload, item.facts)
    except SKIPPED as exc:
        _skip(stats, number, exc)
        return
    stats["new" if new else "duplicates"] += 1


def _skip(stats: dict[str, int], number: int, exc: Exception) -> None:
    stats["errors"] += 1
    print(f"line {number}: skipped: {type(exc).__name__}: {exc}", file=sys.stderr)


def _count_lines(path: str) -> int:
    with open(path, "rb") as fh:
        return sum(1 for _ in fh)
