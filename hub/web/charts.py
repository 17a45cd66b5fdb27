"""Server-rendered charts: a series of (label, value) in, an accessible inline SVG out.

Pure functions with no I/O so the geometry is table-tested. Colours come from the stylesheet
(classes, not inline styles, so the Content-Security-Policy can forbid inline styles); every chart
has a <title> and the page shows the same numbers as a table for screen readers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

from markupsafe import Markup

WIDTH, HEIGHT = 600, 200
PAD_LEFT, PAD_RIGHT, PAD_TOP, PAD_BOTTOM = 90, 12, 12, 28  # room for 20px tick labels


@dataclass(frozen=True)
class Frame:
    """Where values land: the plot area inside the padding, from `low` to `high`."""

    low: int
    high: int
    count: int

    def x(self, index: int) -> float:
        inner = WIDTH - PAD_LEFT - PAD_RIGHT
        if self.count <= 1:
            return PAD_LEFT + inner / 2
        return round(PAD_LEFT + inner * index / (self.count - 1), 1)

    def y(self, value: int) -> float:
        inner = HEIGHT - PAD_TOP - PAD_BOTTOM
        if self.high == self.low:  # all zero: everything lies on the baseline at the bottom
            return float(PAD_TOP + inner)
        return round(PAD_TOP + inner * (self.high - value) / (self.high - self.low), 1)


def frame_for(values: Sequence[int]) -> Frame:
    """Always includes zero, so a bar or line starts from a true baseline."""
    return Frame(low=min(0, *values) if values else 0, high=max(0, *values) if values else 0,
                 count=len(values))


def line_points(values: Sequence[int]) -> list[tuple[float, float]]:
    frame = frame_for(values)
    return [(frame.x(i), frame.y(v)) for i, v in enumerate(values)]


def bar_rects(values: Sequence[int]) -> list[tuple[float, float, float, float]]:
    """(x, y, width, height) per value; negative values hang below the zero line."""
    frame = frame_for(values)
    inner = WIDTH - PAD_LEFT - PAD_RIGHT
    slot = inner / max(len(values), 1)
    width = round(max(slot * 0.7, 1), 1)
    zero = frame.y(0)
    rects = []
    for i, value in enumerate(values):
        top = min(zero, frame.y(value))
        x = round(PAD_LEFT + slot * i + (slot - width) / 2, 1)
        rects.append((x, top, width, round(abs(frame.y(value) - zero), 1)))
    return rects


def line_chart(series: Sequence[tuple[str, int]], title: str,
               fmt: Callable[[int], str] = str) -> Markup:
    values = [v for _, v in series]
    if not values:
        return _empty(title)
    points = " ".join(f"{x},{y}" for x, y in line_points(values))
    body = f'<polyline class="chart-line" fill="none" points="{points}"/>'
    return _svg(title, series, fmt, body)


def bar_chart(series: Sequence[tuple[str, int]], title: str,
              fmt: Callable[[int], str] = str) -> Markup:
    values = [v for _, v in series]
    if not values:
        return _empty(title)
    bars = "".join(
        f'<rect class="chart-bar{" negative" if v < 0 else ""}" x="{x}" y="{y}" width="{w}" '
        f'height="{h}"><title>{escape(label)}: {escape(fmt(v))}</title></rect>'
        for (label, v), (x, y, w, h) in zip(series, bar_rects(values), strict=True))
    return _svg(title, series, fmt, bars)


def _svg(title: str, series: Sequence[tuple[str, int]], fmt: Callable[[int], str],
         body: str, frame: Frame | None = None) -> Markup:
    frame = frame or frame_for([v for _, v in series])
    axis = (f'<line class="chart-axis" x1="{PAD_LEFT}" x2="{WIDTH - PAD_RIGHT}" '
            f'y1="{frame.y(0)}" y2="{frame.y(0)}"/>'
            f'<text class="chart-tick" x="{PAD_LEFT - 6}" y="{frame.y(frame.high) + 4}" '
            f'text-anchor="end">{escape(fmt(frame.high))}</text>')
    if frame.low < 0:
        axis += (f'<text class="chart-tick" x="{PAD_LEFT - 6}" y="{frame.y(frame.low)}" '
                 f'text-anchor="end">{escape(fmt(frame.low))}</text>')
    labels = _x_labels(series, frame)
    return Markup(
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{escape(title)}">'
        f'<title>{escape(title)}</title>{axis}{body}{labels}</svg>')


def _x_labels(series: Sequence[tuple[str, int]], frame: Frame) -> str:
    """First, middle and last labels: enough to read the period without crowding a phone."""
    if not series:
        return ""
    picks = sorted({0, len(series) // 2, len(series) - 1})
    anchors = {0: "start", len(series) - 1: "end"}
    return "".join(
        f'<text class="chart-tick" x="{frame.x(i)}" y="{HEIGHT - 8}" '
        f'text-anchor="{anchors.get(i, "middle")}">{escape(series[i][0])}</text>' for i in picks)


def _empty(title: str) -> Markup:
    return Markup(f'<p class="chart-empty">{escape(title)}: no data for this period yet.</p>')



def comparison_chart(labels: Sequence[str], lines: Sequence[tuple[str, Sequence[int]]],
                     title: str, fmt: Callable[[int], str] = str) -> Markup:
    """Several series over the same labels in one frame (e.g. current vs simulated commission
    per month): one polyline each, classed ``chart-line <name>`` so the stylesheet tells them
    apart; the page names them in a legend and shows the numbers as a table."""
    values = [v for _, series in lines for v in series]
    if not labels or not values:
        return _empty(title)
    frame = Frame(low=min(0, *values), high=max(0, *values), count=len(labels))
    body = "".join(
        f'<polyline class="chart-line {escape(name)}" fill="none" points="'
        + " ".join(f"{frame.x(i)},{frame.y(v)}" for i, v in enumerate(series)) + '"/>'
        + "".join(f'<circle class="chart-dot {escape(name)}" cx="{frame.x(i)}" cy="{frame.y(v)}" '
                  f'r="5"><title>{escape(labels[i])} {escape(name)}: {escape(fmt(v))}</title>'
                  f'</circle>' for i, v in enumerate(series))
        for name, series in lines)
    return _svg(title, [(label, 0) for label in labels], fmt, body, frame)
