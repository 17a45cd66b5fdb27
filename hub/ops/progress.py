"""A dependency-free progress bar for long commands (replay, what-if), on stderr."""

from __future__ import annotations

import sys
import time
from typing import IO


class Progress:
    def __init__(self, total: int | None, label: str, stream: IO[str] | None = None,
                 every: float = 0.5):
        self.total, self.label, self.done = total, label, 0
        self.stream = stream or sys.stderr
        self.every = every
        self.start = self._last = time.monotonic()

    def advance(self, n: int = 1) -> None:
        self.done += n
        now = time.monotonic()
        if now - self._last >= self.every:
            self._last = now
            self._draw(now)

    def close(self) -> None:
        self._draw(time.monotonic())
        self.stream.write("\n")
        self.stream.flush()

    def _draw(self, now: float) -> None:
        elapsed = max(now - self.start, 1e-9)
        rate = self.done / elapsed
        if self.total:
            frac = min(self.done / self.total, 1.0)
            bar = "#" * int(frac * 30)
            text = (f"{self.label} [{bar:<30}] {self.done:,}/{self.total:,} {frac:5.1%} "
                    f"{rate:,.0f}/s")
        else:
            text = f"{self.label} {self.done:,} {rate:,.0f}/s"
        self.stream.write("\r" + text)
        self.stream.flush()
