"""Drawing a report's charts with matplotlib on the Agg canvas (no display, no pyplot: no global figure state, safe
in a server thread): as SVG text for the HTML page, or as figures for the PDF.

Responsible for how a ``TimeChart`` or ``BarChart`` looks: day bars or lines on local dates, the shaded allowed
band, the threshold rule, excursion spans, flagged bars in the warning colour. Not responsible for what the charts
say (the report modules build their data).
"""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import matplotlib
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from controller.reports.model import BarChart, Chart, TimeChart

PLAIN, WARNING, BAND, RULE = "#3465a4", "#cc0000", "#d8ecd3", "#cc0000"
SIZE = (8.0, 3.4)  # inches: a page-wide chart


def figure(chart: Chart, zone: ZoneInfo) -> Figure:
    fig = Figure(figsize=SIZE, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    if isinstance(chart, TimeChart):
        _time_chart(ax, chart, zone)
    else:
        _bar_chart(ax, chart)
    ax.set_title(chart.title, fontsize=10, loc="left")
    ax.set_ylabel(chart.y_label)
    ax.grid(axis="y", alpha=0.3)
    return fig


def svg(chart: Chart, zone: ZoneInfo) -> str:
    """The chart as an ``<svg>`` element (no XML prolog), ready to sit inline in HTML."""
    buffer = io.StringIO()
    # Text stays text (smaller, searchable); a fixed salt keeps element ids stable from one run to the next.
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "open-adc-report"}):
        figure(chart, zone).savefig(buffer, format="svg", metadata={"Date": None})
    text = buffer.getvalue()
    return text[text.index("<svg") :]


def _time_chart(ax: Axes, chart: TimeChart, zone: ZoneInfo) -> None:
    """x is days since the chart's start; ticks are placed and labelled in local time by ``_ticks``."""
    origin = chart.start or min((at for s in chart.series for at, _ in s.points), default=datetime.now(UTC))
    end = chart.end or max((at for s in chart.series for at, _ in s.points), default=origin + timedelta(days=1))

    def x(moment: datetime) -> float:
        return (moment - origin) / timedelta(days=1)

    if chart.band is not None:
        low, high = chart.band
        ax.axhspan(low, high, color=BAND, label=f"allowed {low:g}-{high:g}")
    count = max(len(chart.series), 1)
    for index, series in enumerate(chart.series):
        if not series.points:
            continue
        xs = [x(at) for at, _ in series.points]
        values = [value for _, value in series.points]
        if chart.bars:
            width = 0.8 / count
            offset = (index - (count - 1) / 2) * width
            ax.bar([v + offset for v in xs], values, width=width, label=series.label)
        elif series.step:
            ax.step(xs, values, where="post", label=series.label, color=PLAIN)
        else:
            ax.plot(xs, values, marker="o", label=series.label)
    for span in chart.spans:
        start, stop = x(span.start), x(max(span.end, span.start + timedelta(minutes=1)))
        ax.hlines(span.value, start, stop, colors=WARNING, linewidth=6)
        ax.annotate(span.label, (start, span.value), textcoords="offset points", xytext=(0, 6), fontsize=7)
    if chart.threshold is not None:
        ax.axhline(chart.threshold, color=RULE, linestyle="--", linewidth=1, label=f"threshold {chart.threshold:g}")
    ax.set_xlim(0, x(end))
    if chart.spans or chart.band:
        values = [s.value for s in chart.spans] + [v for s in chart.series for _, v in s.points]
        low, high = chart.band or (0.0, 0.0)
        ax.set_ylim(min([low - 2, *values]) - 1, max([high + 2, *values]) + 2)
    if not chart.series and not chart.spans:
        ax.text(0.5, 0.5, "nothing recorded in the period", transform=ax.transAxes, ha="center", va="center")
    ticks = _ticks(origin, end, zone, daily=chart.daily)
    ax.set_xticks([x(t) for t in ticks], [_tick_label(t, zone, ticks) for t in ticks], fontsize=8)
    if chart.bars:
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7, loc="upper left")


TICK_STEPS = tuple(timedelta(hours=h) for h in (1, 3, 6, 12, 24, 48, 24 * 7, 24 * 14, 24 * 30, 24 * 91))
MAX_TICKS = 10


def _ticks(start: datetime, end: datetime, zone: ZoneInfo, *, daily: bool) -> list[datetime]:
    """Round local times between ``start`` and ``end`` (whole hours, or local midnights), at most ``MAX_TICKS``."""
    span = end - start
    steps = [s for s in TICK_STEPS if not daily or s >= timedelta(days=1)]
    step = next((s for s in steps if span / s <= MAX_TICKS), steps[-1])
    local = start.astimezone(zone)
    if step >= timedelta(days=1):
        first = local.replace(hour=0, minute=0, second=0, microsecond=0)
    else:
        hours = int(step / timedelta(hours=1))
        first = local.replace(hour=local.hour - local.hour % hours, minute=0, second=0, microsecond=0)
    ticks = []
    moment = first
    while moment <= end:
        if moment >= start:
            ticks.append(moment)
        # Step in local wall time, so midnights stay midnights across a DST change.
        moment = (moment.replace(tzinfo=None) + step).replace(tzinfo=zone)
    return ticks


def _tick_label(moment: datetime, zone: ZoneInfo, ticks: list[datetime]) -> str:
    local = moment.astimezone(zone)
    if all(t.astimezone(zone).hour == 0 for t in ticks):
        return f"{local:%m-%d}"
    return f"{local:%m-%d %H:%M}"


def _bar_chart(ax: Axes, chart: BarChart) -> None:
    if not chart.labels:
        ax.text(0.5, 0.5, "nothing to show", transform=ax.transAxes, ha="center", va="center")
        return
    flagged = chart.flagged or tuple(False for _ in chart.labels)
    colours = [WARNING if flag else PLAIN for flag in flagged]
    positions = list(range(len(chart.labels)))
    ax.bar(positions, chart.values, color=colours)
    ax.set_xticks(positions, [_short_label(label) for label in chart.labels], rotation=30, ha="right", fontsize=7)
    if chart.threshold is not None:
        ax.axhline(chart.threshold, color=RULE, linestyle="--", linewidth=1, label=f"threshold {chart.threshold:g}")
        ax.legend(fontsize=7, loc="upper right")


def _short_label(label: str, limit: int = 28) -> str:
    return label if len(label) <= limit else label[: limit - 1] + "…"
