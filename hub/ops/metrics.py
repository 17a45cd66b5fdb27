"""A small in-process Prometheus registry: request counts and durations, event outcomes."""

from __future__ import annotations

import threading
from collections import defaultdict


class Metrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: dict[tuple[str, str, int], int] = defaultdict(int)
        self.seconds: dict[tuple[str, str], float] = defaultdict(float)
        self.counters: dict[str, int] = defaultdict(int)

    def observe_request(self, method: str, path: str, status: int, seconds: float) -> None:
        with self._lock:
            self.requests[(method, path, status)] += 1
            self.seconds[(method, path)] += seconds

    def inc(self, name: str, value: int = 1) -> None:
        with self._lock:
            self.counters[name] += value

    def render(self) -> str:
        lines = ["# TYPE hub_http_requests_total counter"]
        with self._lock:
            for (method, path, status), count in sorted(self.requests.items()):
                lines.append(f'hub_http_requests_total{{method="{method}",path="{path}",'
                             f'status="{status}"}} {count}')
            lines.append("# TYPE hub_http_request_seconds_total counter")
            for (method, path), secs in sorted(self.seconds.items()):
                lines.append(f'hub_http_request_seconds_total{{method="{method}",path="{path}"}} '
                             f'{secs:.6f}')
            for name, value in sorted(self.counters.items()):
                lines.append(f"# TYPE hub_{name} counter")
                lines.append(f"hub_{name} {value}")
        return "\n".join(lines) + "\n"


METRICS = Metrics()
