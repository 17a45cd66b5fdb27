"""Server-rendered charts: a series of (label, value) in, an accessible inline SVG out.

Pure functions with no I/O so the geometry is table-tested. Colours and font sizes come from the
stylesheet (classes, not inline styles, so the Content-Security-Policy can forbid inline styles);
every chart has a <title>, every bar and point its own <title> (the value on hover), and the page
shows the same numbers as a table for screen readers.

Why the drawing has a fixed natural size: an SVG with a viewBox scales its text with it, so a chart
stretched over a wide page once wrote its tick labels in 40px letters. The SVG says
``width``/``height`` and the stylesheet lets it shrink (``max-width: 100%``) but never grow; on a
phone, where it shrinks to about two thirds, the stylesheet enlarges the font by as much, and hides
the x labels classed ``minor`` so the rest keep their room.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

from markupsafe import Markup

WIDTH, HEIGHT = 480, 220
PAD_RIGHT, PAD_TOP, PAD_BOTTOM = 14, 14, 30
# Room for the y labels: the widest label at the phone's font size (about 10 units a character).
CHAR_WIDTH, MIN_PAD_LEFT = 10, 36
# Widest x label, in characters, and the space between two labels, for choosing how many to show.
LABEL_CHAR, LABEL_GAP, PHONE_CHAR = 8, 12, 12
GRID_STEPS = 4  # gridlines at quarters of the range; only zero and the extremes are labelled
MAX_BAR = 56  # one or two bars must not fill the whole plot


@dataclass(frozen=True)
class Frame:
    """Where values land: the plot box inside the padding, from `low` to `high` (zero always
    included), with `count` slots across; every point sits in the middle of its slot."""

    low: int
    high: int
    count: int
    left: float = MIN_PAD_LEFT

    @property
    def right(self) -> float:
        return float(WIDTH - PAD_RIGHT)

    @property
    def top(self) -> float:
        return float(PAD_TOP)

    @property
    def bottom(self) -> float:
        return float(HEIGHT - PAD_BOTTOM)

    @property
    def slot(self) -> float:
        return (self.right - self.left) / max(self.count, 1)

    def x(self, index: int) -> float:
        return round(self.left + self.slot * (index + 0.5), 1)

    def y(self, value: int) -> float:
        if self.high == self.low:  # all zero: everything lies on the baseline at the bottom
            return self.bottom
        span = self.bottom - self.top
        return round(self.top + span * (self.high - value) / (self.high - self.low), 1)


def frame_for(values: Sequence[int], left: float = MIN_PAD_LEFT) -> Frame:
    """Always includes zero, so a bar or line starts from a true baseline."""
    return Frame(low=min(0, *values) if values else 0, high=max(0, *values) if values else 0,
                 count=len(values), left=left)


def pad_left(labels: Sequence[str]) -> float:
    return float(max(MIN_PAD_LEFT, max((len(t) for t in labels), default=0) * CHAR_WIDTH + 10))


def line_points(values: Sequence[int]) -> list[tuple[float, float]]:
    frame = frame_for(values)
    return [(frame.x(i), frame.y(v)) for i, v in enumerate(values)]


def bar_rects(values: Sequence[int],
              frame: Frame | None = None) -> list[tuple[float, float, float, float]]:
    """(x, y, width, height) per value; negative values hang below the zero line."""
    frame = frame or frame_for(values)
    width = round(min(max(frame.slot * 0.7, 1), MAX_BAR), 1)
    zero = frame.y(0)
    rects = []
    for i, value in enumerate(values):
        top = min(zero, frame.y(value))
        rects.append((round(frame.x(i) - width / 2, 1), top, width,
                      round(abs(frame.y(value) - zero), 1)))
    return rects


def line_chart(series: Sequence[tuple[str, int]], title: str,
               fmt: Callable[[int], str] = str) -> Markup:
    values = [v for _, v in series]
    if not values:
        return _empty(title)
    frame = _frame(values, fmt)
    points = " ".join(f"{frame.x(i)},{frame.y(v)}" for i, v in enumerate(values))
    body = (f'<polyline class="chart-line" fill="none" points="{points}"/>'
            + _dots("", [label for label, _ in series], values, frame, fmt))
    if len(values) == 1:
        body += _value_label("", frame, 0, values[0], fmt, "middle")
    return _svg(title, [label for label, _ in series], fmt, body, frame)


def bar_chart(series: Sequence[tuple[str, int]], title: str,
              fmt: Callable[[int], str] = str) -> Markup:
    values = [v for _, v in series]
    if not values:
        return _empty(title)
    frame = _frame(values, fmt)
    bars = "".join(
        f'<rect class="chart-bar{" negative" if v < 0 else ""}" x="{x}" y="{y}" width="{w}" '
        f'height="{h}"><title>{escape(label)}: {escape(fmt(v))}</title></rect>'
        for (label, v), (x, y, w, h) in zip(series, bar_rects(values, frame), strict=True))
    if len(values) <= 3:  # a few bars: write each value above (or below) its bar
        bars += "".join(_value_label("", frame, i, v, fmt, "middle") for i, v in enumerate(values))
    return _svg(title, [label for label, _ in series], fmt, bars, frame)


def comparison_chart(labels: Sequence[str], lines: Sequence[tuple[str, Sequence[int]]],
                     title: str, fmt: Callable[[int], str] = str) -> Markup:
    """Several series over the same labels in one frame (e.g. current vs simulated commission
    per month): one polyline each, classed ``chart-line <name>`` so the stylesheet tells them
    apart; the page names them in a legend and shows the numbers as a table. With one label
    there is no line to draw: each value is written beside its dot, named."""
    values = [v for _, series in lines for v in series]
    if not labels or not values:
        return _empty(title)
    frame = _frame(values, fmt, count=len(labels))
    body = "".join(
        f'<polyline class="chart-line {escape(name)}" fill="none" points="'
        + " ".join(f"{frame.x(i)},{frame.y(v)}" for i, v in enumerate(series)) + '"/>'
        + _dots(name, labels, series, frame, fmt)
        for name, series in lines)
    if len(labels) == 1:
        sides = ("end", "start")
        body += "".join(_value_label(name, frame, 0, series[0], fmt, sides[n % 2], named=True)
                        for n, (name, series) in enumerate(lines))
    return _svg(title, labels, fmt, body, frame)


def _frame(values: Sequence[int], fmt: Callable[[int], str], count: int | None = None) -> Frame:
    frame = frame_for(values)
    ticks = [fmt(v) for v in _tick_values(frame)]
    return Frame(low=frame.low, high=frame.high, count=count or len(values), left=pad_left(ticks))


def _tick_values(frame: Frame) -> list[int]:
    """The labelled values: zero, the maximum and (below zero) the minimum."""
    return sorted({0, frame.high, frame.low})


def _dots(name: str, labels: Sequence[str], values: Sequence[int], frame: Frame,
          fmt: Callable[[int], str]) -> str:
    cls = f"chart-dot {escape(name)}".strip()
    who = f" {escape(name)}" if name else ""
    return "".join(f'<circle class="{cls}" cx="{frame.x(i)}" cy="{frame.y(v)}" r="4">'
                   f'<title>{escape(labels[i])}{who}: {escape(fmt(v))}</title></circle>'
                   for i, v in enumerate(values))


def _value_label(name: str, frame: Frame, index: int, value: int, fmt: Callable[[int], str],
                 anchor: str, named: bool = False) -> str:
    """A value written on the chart next to its point: above it, or beside it (`anchor` end:
    to the left, start: to the right) so two series at one point do not overlap."""
    shift = {"end": -10, "start": 10}.get(anchor, 0)
    y = frame.y(value)
    inside = ""
    if anchor != "middle":
        y += 4
    elif value < 0:
        y += 16
    elif y - 8 >= frame.top + 10:
        y -= 8
    else:  # no room above the tallest bar: written inside its top, in the bar's ink
        y, inside = y + 16, " inside"
    y = min(max(y, frame.top + 10), frame.bottom - 2)
    text = f"{name} {fmt(value)}" if named else fmt(value)
    cls = f"chart-value{inside} {escape(name)}".strip()
    return (f'<text class="{cls}" x="{round(frame.x(index) + shift, 1)}" y="{round(y, 1)}" '
            f'text-anchor="{anchor}">{escape(text)}</text>')


def _svg(title: str, labels: Sequence[str], fmt: Callable[[int], str], body: str,
         frame: Frame) -> Markup:
    return Markup(
        f'<svg class="chart" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'preserveAspectRatio="xMinYMin meet" role="img" aria-label="{escape(title)}">'
        f'<title>{escape(title)}</title>{_grid(frame, fmt)}{body}{_axes(frame)}'
        f'{_x_labels(labels, frame)}</svg>')


def _grid(frame: Frame, fmt: Callable[[int], str]) -> str:
    """Gridlines at quarters of the range, and the labelled ticks (zero, maximum, minimum)."""
    lines = []
    for step in range(GRID_STEPS + 1):
        y = round(frame.top + (frame.bottom - frame.top) * step / GRID_STEPS, 1)
        lines.append(f'<line class="chart-grid" x1="{frame.left}" x2="{frame.right}" '
                     f'y1="{y}" y2="{y}"/>')
    ticks = "".join(
        f'<text class="chart-tick y" x="{frame.left - 6}" y="{round(frame.y(v) + 4, 1)}" '
        f'text-anchor="end">{escape(fmt(v))}</text>' for v in _tick_values(frame))
    return "".join(lines) + ticks


def _axes(frame: Frame) -> str:
    """The y axis on the left edge of the plot box and the zero line across it."""
    return (f'<line class="chart-axis" x1="{frame.left}" x2="{frame.left}" y1="{frame.top}" '
            f'y2="{frame.bottom}"/>'
            f'<line class="chart-axis" x1="{frame.left}" x2="{frame.right}" y1="{frame.y(0)}" '
            f'y2="{frame.y(0)}"/>')


def label_step(count: int, inner: float, longest: int) -> int:
    """Label every n-th slot so that labels `longest` characters wide do not overlap."""
    room = max(int(inner // (longest * LABEL_CHAR + LABEL_GAP)), 1)
    return max(-(-count // room), 1)


def _x_labels(labels: Sequence[str], frame: Frame) -> str:
    """As many labels as fit, evenly spaced from the newest backwards (the newest is always
    named); those that would not fit in a phone's larger letters are classed ``minor`` so that
    the stylesheet can hide them there."""
    if not labels:
        return ""
    longest, inner = max(len(t) for t in labels), frame.right - frame.left
    step = label_step(len(labels), inner, longest)
    # the phone's letters are half as wide again: keep every n-th of these, n as needed
    wide = label_step(len(labels), inner, -(-longest * PHONE_CHAR // LABEL_CHAR))
    keep = step * -(-wide // step)
    last = len(labels) - 1
    out = []
    for i in range(last, -1, -step):
        minor = " minor" if (last - i) % keep else ""
        x, anchor, half = frame.x(i), "middle", len(labels[i]) * LABEL_CHAR / 2
        if x + half > WIDTH - 2:  # keep the outer labels inside the drawing
            x, anchor = float(WIDTH - 2), "end"
        elif x - half < 2:
            x, anchor = 2.0, "start"
        out.append(f'<text class="chart-tick x{minor}" x="{x}" y="{HEIGHT - 10}" '
                   f'text-anchor="{anchor}">{escape(labels[i])}</text>')
    return "".join(reversed(out))


def _empty(title: str) -> Markup:
    return Markup(f'<p class="chart-empty">{escape(title)}: no data for this period yet.</p>')
