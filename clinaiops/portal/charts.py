"""Server-rendered inline SVG charts for the clinician portal: the BP trend, SHAP factor bars and class
probabilities.

Pure: the standard library only, no Django. The building blocks and their conventions (escaping, accessibility,
the Okabe-Ito palette) are in `clinaiops.portal.svg`. Callers mark the returned string safe (``mark_safe``);
every piece of caller-supplied text is escaped.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo

from clinaiops.portal import svg
from clinaiops.portal.svg import Attr

__all__ = [
    "BP_SERIES",
    "BPPoint",
    "BPSeries",
    "BPThresholds",
    "bp_series_of",
    "bp_trend_svg",
    "factor_bars_svg",
    "probability_bars_svg",
]

SYSTOLIC_COLOUR = svg.BLUE
DIASTOLIC_COLOUR = svg.VERMILLION
POSITIVE_COLOUR = svg.BLUE
NEGATIVE_COLOUR = svg.ORANGE
LOW_COLOUR = svg.PURPLE
PROPOSAL_COLOUR = svg.INK

_HOUR_STEPS = (1, 2, 3, 6, 12)
_DAY_STEPS = (1, 2, 3, 7, 14, 28, 56, 91, 182, 364)
_MAX_TICKS = 7


@dataclass(frozen=True)
class BPPoint:
    """One home blood-pressure reading.

    Attributes:
        taken_at: Timezone-aware time the reading was taken.
        systolic: Systolic pressure in mmHg.
        diastolic: Diastolic pressure in mmHg.
        source: Measurement source: ``"cuff"``, ``"ppg"`` (cuffless wearable),
            ``"ecg"`` or ``"manual"``.
    """

    taken_at: datetime
    systolic: int
    diastolic: int
    source: str


@dataclass(frozen=True)
class BPThresholds:
    """The safety thresholds of the approval policy in force (mmHg), drawn as reference lines: a reading at or
    above a crisis line, or below a low line, is what the safety rules act on. Callers pass the policy's values,
    so the chart never disagrees with the rules."""

    crisis_sbp: int
    crisis_dbp: int
    hypotension_sbp: int
    hypotension_dbp: int


def _finite(value: float) -> float | None:
    """Return ``value`` as a float, or ``None`` if it is NaN or infinite."""
    as_float = float(value)
    return as_float if math.isfinite(as_float) else None


# --------------------------------------------------------------------------- #
# Blood-pressure trend
# --------------------------------------------------------------------------- #


def _local(moment: datetime, tz: tzinfo | None) -> datetime:
    """Express ``moment`` in the chart's display time zone."""
    if tz is None or moment.tzinfo is None:
        return moment
    return moment.astimezone(tz)


def _dates_between(first: date, last: date) -> list[date]:
    """Every calendar date from ``first`` to ``last`` inclusive."""
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def _time_ticks(start: datetime, end: datetime, tz: tzinfo | None, max_ticks: int = _MAX_TICKS) -> list[datetime]:
    """Choose at most ``max_ticks`` tick times within ``[start, end]``.

    Ticks fall on local wall-clock boundaries (whole hours or midnights in
    ``tz``), which keeps them meaningful across DST changes. The finest step
    yielding no more than ``max_ticks`` ticks wins.
    """
    lo, hi = start.timestamp(), end.timestamp()
    days = _dates_between(_local(start, tz).date(), _local(end, tz).date())
    span_hours = (hi - lo) / 3600

    def within(candidates: list[datetime]) -> list[datetime]:
        return [c for c in candidates if lo <= c.timestamp() <= hi]

    for step in _HOUR_STEPS:
        if span_hours / step > max_ticks + 1:
            continue
        hourly = within([datetime.combine(d, time(h), tzinfo=tz) for d in days for h in range(0, 24, step)])
        if len(hourly) <= max_ticks:
            return hourly
    midnights = within([datetime.combine(d, time(0), tzinfo=tz) for d in days])
    for step_days in _DAY_STEPS:
        if len(midnights[::step_days]) <= max_ticks:
            return midnights[::step_days]
    return midnights[:: math.ceil(len(midnights) / max_ticks)]


def _tick_labels(ticks: Sequence[datetime], tz: tzinfo | None) -> list[str]:
    """Label ticks compactly: ``"03 Nov"`` at midnight, ``"06:00"`` otherwise.

    If no tick falls on a midnight the first tick also shows its date, so the
    axis always names a day.
    """
    local = [_local(t, tz) for t in ticks]
    midnight = [t.hour == 0 and t.minute == 0 for t in local]
    labels = []
    for index, moment in enumerate(local):
        if midnight[index]:
            labels.append(f"{moment:%d %b}")
        elif index == 0 and not any(midnight):
            labels.append(f"{moment:%d %b %H:%M}")
        else:
            labels.append(f"{moment:%H:%M}")
    return labels


def _reading_tooltip(point: BPPoint, tz: tzinfo | None) -> str:
    """Tooltip text such as ``"03 Nov 07:12 — 142/88 (cuff)"``."""
    when = _local(point.taken_at, tz)
    return f"{when:%d %b %H:%M} \u2014 {point.systolic}/{point.diastolic} ({point.source})"


@dataclass(frozen=True)
class BPSeries:
    """One kind of measurement, drawn as its own series: the clinician can compare them or hide one.

    A home cuff measures; a wearable (PPG, or ECG-derived) estimates without a cuff and can under-read on darker
    skin; a typed-in reading (an office or pharmacy cuff, or a cuff without a link) is a measurement nobody's
    device sent. Joined into one line they made a zigzag that looked like variability (issue 11)."""

    key: str
    label: str
    sources: frozenset[str]
    line: str | None  # the joining line's dash pattern ("" solid); None joins nothing (sparse, unevenly timed)


BP_SERIES: tuple[BPSeries, ...] = (
    BPSeries("cuff", "Home cuff", frozenset({"cuff"}), ""),
    BPSeries("wearable", "Wearable (cuffless)", frozenset({"ppg", "ecg"}), "5 3"),
    BPSeries("manual", "Typed in (office or other cuff)", frozenset({"manual"}), None),
)
_SERIES_BY_SOURCE = {source: series for series in BP_SERIES for source in series.sources}


def bp_series_of(source: str) -> BPSeries:
    """The series a reading source belongs to; an unknown source is drawn with the typed-in readings."""
    return _SERIES_BY_SOURCE.get(source, BP_SERIES[2])


def _sbp_mark(series: str, x: float, y: float, **attrs: Attr) -> str:
    """The systolic marker: a circle (cuff filled, wearable hollow) or, typed in, a diamond."""
    if series == "manual":
        return svg.tag("polygon", points=_polygon([(x, y - 4.5), (x + 4.5, y), (x, y + 4.5), (x - 4.5, y)]), **attrs)
    return svg.tag("circle", cx=x, cy=y, r=3.5, **attrs)


def _dbp_mark(series: str, x: float, y: float, **attrs: Attr) -> str:
    """The diastolic marker: a square (cuff filled, wearable hollow) or, typed in, a triangle."""
    if series == "manual":
        return svg.tag("polygon", points=_polygon([(x, y - 4.5), (x + 4.5, y + 3.5), (x - 4.5, y + 3.5)]), **attrs)
    return svg.tag("rect", x=x - 3.2, y=y - 3.2, width=6.4, height=6.4, **attrs)


def _polygon(corners: Sequence[tuple[float, float]]) -> str:
    return " ".join(f"{svg.number(x)},{svg.number(y)}" for x, y in corners)


def _bp_legend_items(
    series_present: Sequence[BPSeries], thresholds: BPThresholds, *, proposal: bool
) -> list[tuple[str, str]]:
    """Legend swatches and labels for the blood-pressure chart: measures, then the series drawn, then the lines."""
    items = [
        (svg.tag("circle", r=3.5, fill=SYSTOLIC_COLOUR), "Systolic"),
        (svg.tag("rect", x=-3.2, y=-3.2, width=6.4, height=6.4, fill=DIASTOLIC_COLOUR), "Diastolic"),
    ]
    for series in series_present:
        if series.key == "wearable":
            mark = svg.tag("circle", r=3.5, fill=svg.WHITE, stroke=svg.MUTED, stroke_width=1.5)
            items.append((mark, "Hollow = wearable (PPG/ECG)"))
        elif series.key == "manual":
            mark = _sbp_mark("manual", 0, 0, fill=svg.MUTED)
            items.append((mark, "Diamond = typed in"))
        else:
            items.append((svg.tag("circle", r=3.5, fill=svg.MUTED), "Filled = home cuff"))
    band = svg.tag("rect", x=-7, y=-5, width=14, height=10, fill=SYSTOLIC_COLOUR, opacity=0.14)
    items.append((band, "In range"))
    for colour, dash, label in (
        (svg.MUTED, "4 2", "Targets"),
        (svg.CRISIS_RED, "5 2", f"Crisis \u2265{thresholds.crisis_sbp}/{thresholds.crisis_dbp}"),
        (LOW_COLOUR, "2 2", f"Low <{thresholds.hypotension_sbp}/{thresholds.hypotension_dbp}"),
    ):
        swatch = svg.tag(
            "line", x1=-7, x2=7, y1=0, y2=0, stroke=colour, stroke_width=1.5, stroke_dasharray=dash
        )  # fmt: skip
        items.append((swatch, label))
    if proposal:
        swatch = svg.tag("line", x1=0, x2=0, y1=-6, y2=6, stroke=PROPOSAL_COLOUR, stroke_width=2.5)
        items.append((swatch, "Proposal made"))
    return items


def bp_trend_svg(
    points: Sequence[BPPoint],
    *,
    target_sbp: int,
    target_dbp: int,
    thresholds: BPThresholds,
    width: int = 720,
    height: int = 260,
    markers: Sequence[tuple[datetime, str]] = (),
    proposal: tuple[datetime, str] | None = None,
    title: str = "Home blood pressure",
) -> str:
    """Render home blood-pressure readings over time as an inline SVG.

    Time runs along the x axis (ticks labelled e.g. ``"03 Nov"``), pressure in
    mmHg on the y axis. The y range covers the data, both targets and every
    threshold line (60-180 mmHg with the default policy), with gridlines every
    20 mmHg. Systolic readings are blue circles, diastolic readings vermillion
    squares. Each kind of measurement (`BP_SERIES`) is a series of its own in
    ``<g class="series-<key>">`` groups, so a page can hide one with CSS:
    home-cuff readings are filled and joined by solid lines, wearable (PPG or
    ECG, cuffless) readings hollow and joined by dashed lines, typed-in readings
    diamonds (systolic) and triangles (diastolic), not joined. The in-range
    band, from the low line to the target, is shaded for each measure. Targets are
    dashed lines labelled e.g. ``"SBP target 130"``. The policy's safety
    thresholds are reference lines too: the hypertensive-crisis lines (dashed
    red, ``"crisis SBP 180"`` and ``"crisis DBP 120"``) and the low-pressure
    lines (dotted purple, ``"low SBP 90"``, ``"low DBP 60"``). Each of
    ``markers`` (e.g. regimen changes) is a dotted vertical line with its
    label; ``proposal`` (the moment a recommendation was made) a solid one,
    always inside the plotted range. Every reading carries one ``<title>``
    tooltip such as ``"03 Nov 07:12 — 142/88 (cuff)"``.

    Args:
        points: Readings, in any order. Times should be timezone-aware; labels
            use the time zone of the earliest reading.
        target_sbp: Systolic target in mmHg.
        target_dbp: Diastolic target in mmHg.
        thresholds: The approval policy's safety thresholds in force.
        width: ViewBox width.
        height: ViewBox height.
        markers: ``(moment, label)`` pairs; markers outside the plotted time
            range are omitted.
        proposal: ``(moment, label)`` of the proposal under review, if any.
        title: Accessible title of the chart.

    Returns:
        A complete ``<svg>`` element as a string. With no readings, a valid SVG
        stating "No readings in this period".
    """
    if not points:
        return svg.empty_svg(width, height, title, "No readings in this period", "chart-bp")

    readings = sorted(points, key=lambda p: p.taken_at.timestamp())
    tz = readings[0].taken_at.tzinfo
    present = [s for s in BP_SERIES if any(bp_series_of(r.source) is s for r in readings)]

    # Legend first: its height decides the top margin.
    left, right, bottom = 44.0, 12.0, 24.0
    legend_items = _bp_legend_items(present, thresholds, proposal=proposal is not None)
    legend, legend_rows = svg.legend(legend_items, left - 8, 10, width - right)
    top = 38 + svg.LEGEND_ROW * (legend_rows - 1)
    height = max(height, round(top + 160 + bottom))  # a wrapped legend must not squeeze the plot

    plot_w = max(width - left - right, 10.0)
    plot_h = max(height - top - bottom, 10.0)
    x_min, x_max = left, left + plot_w
    y_top, y_bottom = top, top + plot_h

    t_first, t_last = readings[0].taken_at, readings[-1].taken_at
    span_first, span_last = t_first, t_last
    if proposal is not None:
        span_first = min(span_first, proposal[0], key=lambda m: m.timestamp())
        span_last = max(span_last, proposal[0], key=lambda m: m.timestamp())
    span = span_last.timestamp() - span_first.timestamp()
    pad = timedelta(hours=12) if span < 3600 else timedelta(seconds=span * 0.03)
    t_start, t_end = span_first - pad, span_last + pad
    t0, t1 = t_start.timestamp(), t_end.timestamp()

    def sx(moment: datetime) -> float:
        return x_min + (moment.timestamp() - t0) / (t1 - t0) * plot_w

    values = [r.systolic for r in readings] + [r.diastolic for r in readings]
    # Points get 5 mmHg of room for their markers; lines may sit on the frame (the low DBP line at 60).
    lines = [target_sbp, target_dbp, thresholds.crisis_sbp, thresholds.crisis_dbp]
    lines += [thresholds.hypotension_sbp, thresholds.hypotension_dbp]
    mm_lo = math.floor(min(min(values) - 5, *lines) / 20) * 20
    mm_hi = math.ceil(max(max(values) + 5, *lines) / 20) * 20

    def sy(mmhg: float) -> float:
        return y_bottom - (mmhg - mm_lo) / (mm_hi - mm_lo) * plot_h

    latest = readings[-1]
    noun = "reading" if len(readings) == 1 else "readings"
    per_series = ", ".join(
        f"{sum(1 for r in readings if bp_series_of(r.source) is s)} {s.label.lower()}" for s in present
    )
    desc = (
        f"{len(readings)} {noun} ({per_series}) from {_local(t_first, tz):%d %b %Y} to "
        f"{_local(t_last, tz):%d %b %Y}; latest {latest.systolic}/"
        f"{latest.diastolic} mmHg ({latest.source}). "
        f"Targets {target_sbp}/{target_dbp} mmHg."
    )
    if proposal is not None:
        desc += f" Proposal made {_local(proposal[0], tz):%d %b %H:%M}: {proposal[1]}."
    parts = [
        svg.svg_open(width, height, title, css_class="chart-bp"),
        svg.tag("desc", svg.esc(desc)),
        legend,
    ]

    # The in-range bands, from the low line up to the target, under everything else.
    bands = []
    for css, colour, low, target in (
        ("band-sbp", SYSTOLIC_COLOUR, thresholds.hypotension_sbp, target_sbp),
        ("band-dbp", DIASTOLIC_COLOUR, thresholds.hypotension_dbp, target_dbp),
    ):
        if target > low:
            bands.append(
                svg.tag(
                    "rect",
                    class_=f"target-band {css}",
                    x=x_min,
                    y=sy(target),
                    width=plot_w,
                    height=sy(low) - sy(target),
                    fill=colour,
                    opacity=0.08,
                )
            )
    parts.append(svg.tag("g", "".join(bands), class_="target-bands"))

    # Gridlines and y axis.
    gridlines = range(mm_lo, mm_hi + 1, 20)
    grid = "".join(svg.tag("line", x1=x_min, y1=sy(v), x2=x_max, y2=sy(v)) for v in gridlines)
    parts.append(svg.tag("g", grid, class_="grid", stroke=svg.GRID, stroke_width=1))
    y_labels = [svg.text(str(v), x=x_min - 6, y=sy(v), dominant_baseline="middle") for v in gridlines]
    y_labels.append(svg.text("mmHg", x=x_min - 6, y=y_top - 9, font_size=10))
    parts.append(svg.tag("g", "".join(y_labels), class_="y-axis", fill=svg.MUTED, text_anchor="end"))

    # X axis.
    max_ticks = max(2, min(_MAX_TICKS, int(plot_w // 90)))
    ticks = _time_ticks(t_start, t_end, tz, max_ticks)
    x_axis = [svg.tag("line", x1=x_min, y1=y_bottom, x2=x_max, y2=y_bottom, stroke=svg.MUTED)]
    for tick, label in zip(ticks, _tick_labels(ticks, tz), strict=True):
        tx = sx(tick)
        x_axis.append(svg.tag("line", x1=tx, y1=y_bottom, x2=tx, y2=y_bottom + 4, stroke=svg.MUTED))
        x_axis.append(svg.text(label, x=tx, y=y_bottom + 16))
    parts.append(svg.tag("g", "".join(x_axis), class_="x-axis", fill=svg.MUTED, text_anchor="middle"))

    # Reference lines go under the data; their labels are drawn later, above
    # the series lines, with a white halo.
    references = (
        (target_sbp, SYSTOLIC_COLOUR, f"SBP target {target_sbp}", "target-sbp", "6 4"),
        (target_dbp, DIASTOLIC_COLOUR, f"DBP target {target_dbp}", "target-dbp", "6 4"),
        (thresholds.crisis_sbp, svg.CRISIS_RED, f"crisis SBP {thresholds.crisis_sbp}", "crisis crisis-sbp", "8 3"),
        (thresholds.crisis_dbp, svg.CRISIS_RED, f"crisis DBP {thresholds.crisis_dbp}", "crisis crisis-dbp", "8 3"),
        (thresholds.hypotension_sbp, LOW_COLOUR, f"low SBP {thresholds.hypotension_sbp}", "low low-sbp", "2 2"),
        (thresholds.hypotension_dbp, LOW_COLOUR, f"low DBP {thresholds.hypotension_dbp}", "low low-dbp", "2 2"),
    )
    ref_labels = []
    for mmhg, colour, label, css, dash in references:
        ry = sy(mmhg)
        # Targets are labelled at the right, thresholds at the left, so a target 10 mmHg from a threshold
        # (130 against a DBP crisis line at 120) does not print over it.
        is_target = css.startswith("target")
        parts.append(
            svg.tag(
                "line",
                class_=css,
                x1=x_min,
                y1=ry,
                x2=x_max,
                y2=ry,
                stroke=colour,
                stroke_width=1.5,
                stroke_dasharray=dash,
            )
        )
        ref_labels.append(
            svg.text(
                label,
                class_=f"{css.split()[-1]}-label",
                x=x_max - 4 if is_target else x_min + 4,
                y=ry - 4,
                text_anchor="end" if is_target else "start",
                **svg.halo(colour),
            )
        )

    # Event markers (e.g. regimen changes).
    visible = sorted(
        ((m, lbl) for m, lbl in markers if t0 <= m.timestamp() <= t1),
        key=lambda m: m[0].timestamp(),
    )
    marker_parts = []
    for index, (moment, label) in enumerate(visible):
        mx = sx(moment)
        anchor, text_x = ("end", mx - 3) if mx > x_max - 80 else ("start", mx + 3)
        line = svg.tag(
            "line",
            x1=mx,
            y1=y_top,
            x2=mx,
            y2=y_bottom,
            stroke=svg.MUTED,
            stroke_dasharray="2 3",
        )
        marker_text = svg.text(
            svg.truncate(label, 24),
            x=text_x,
            y=y_top + 10 + (index % 2) * 12,
            text_anchor=anchor,
            font_size=10,
            **svg.halo(svg.MUTED),
        )
        tooltip = svg.title(f"{_local(moment, tz):%d %b %H:%M} \u2014 {label}")
        marker_parts.append(svg.tag("g", tooltip + line + marker_text, class_="marker"))
    if marker_parts:
        parts.append(svg.tag("g", "".join(marker_parts), class_="markers"))

    # Series lines (one pair per series that has one), then the reference labels on top of them.
    by_series = {s.key: [r for r in readings if bp_series_of(r.source) is s] for s in present}
    for series in present:
        members = by_series[series.key]
        if series.line is None or len(members) < 2:
            continue
        lines_svg = []
        for css, colour, values_of in (
            ("sbp-line", SYSTOLIC_COLOUR, [r.systolic for r in members]),
            ("dbp-line", DIASTOLIC_COLOUR, [r.diastolic for r in members]),
        ):
            coords = " ".join(
                f"{svg.number(sx(r.taken_at))},{svg.number(sy(v))}" for r, v in zip(members, values_of, strict=True)
            )
            lines_svg.append(
                svg.tag(
                    "polyline",
                    class_=f"{css} series-{series.key}",
                    points=coords,
                    fill="none",
                    stroke=colour,
                    stroke_width=1.5,
                    stroke_linejoin="round",
                    stroke_dasharray=series.line or None,
                    opacity=0.8,
                )
            )
        parts.append(svg.tag("g", "".join(lines_svg), class_=f"series-lines series-{series.key}"))
    parts.append(svg.tag("g", "".join(ref_labels), class_="reference-labels"))

    # The proposal: a solid line across the plot, labelled at the top, above the series lines.
    if proposal is not None:
        px = sx(proposal[0])
        anchor, text_x = ("end", px - 4) if px > x_max - 120 else ("start", px + 4)
        parts.append(
            svg.tag(
                "g",
                svg.title(f"{_local(proposal[0], tz):%d %b %H:%M} \u2014 {proposal[1]}")
                + svg.tag("line", x1=px, y1=y_top, x2=px, y2=y_bottom, stroke=PROPOSAL_COLOUR, stroke_width=2.5)
                + svg.text(
                    svg.truncate(proposal[1], 30),
                    x=text_x,
                    y=y_bottom - 8,
                    text_anchor=anchor,
                    font_weight=700,
                    **svg.halo(PROPOSAL_COLOUR),
                ),
                class_="proposal-marker",
            )
        )

    # Readings: one group, hence one tooltip, per reading; one group of them per series.
    for series in present:
        hollow = series.key == "wearable"
        groups = []
        for reading in by_series[series.key]:
            rx = sx(reading.taken_at)
            systolic = _sbp_mark(
                series.key,
                rx,
                sy(reading.systolic),
                class_="sbp",
                fill=svg.WHITE if hollow else SYSTOLIC_COLOUR,
                stroke=SYSTOLIC_COLOUR,
                stroke_width=1.5,
            )
            diastolic = _dbp_mark(
                series.key,
                rx,
                sy(reading.diastolic),
                class_="dbp",
                fill=svg.WHITE if hollow else DIASTOLIC_COLOUR,
                stroke=DIASTOLIC_COLOUR,
                stroke_width=1.5,
            )
            groups.append(
                svg.tag(
                    "g",
                    svg.title(_reading_tooltip(reading, tz)) + systolic + diastolic,
                    class_=f"reading {series.key}",
                    data_source=reading.source,
                )
            )
        parts.append(svg.tag("g", "".join(groups), class_=f"readings series-{series.key}", data_series=series.key))
    parts.append("</svg>")
    return "".join(parts)


# --------------------------------------------------------------------------- #
# Explanation (feature attribution) bars
# --------------------------------------------------------------------------- #


def _signed(value: float | None) -> str:
    """Format an attribution with an explicit sign and two decimals."""
    if value is None:
        return "n/a"
    if round(value, 2) == 0:
        return "0.00"
    return f"{value:+.2f}"


def factor_bars_svg(
    factors: Sequence[tuple[str, float]],
    *,
    width: int = 480,
    title: str = "Top factors",
) -> str:
    """Render feature attributions as horizontal diverging bars.

    Bars grow from a central zero axis: positive values (pushing toward the
    proposed action) extend right in blue, negative values extend left in
    orange. Labels sit on the left and the signed value (two decimals) on the
    right, so the direction is readable without colour. Rows keep the given
    order; non-finite values are shown as "n/a" with no bar.

    Args:
        factors: ``(label, value)`` pairs.
        width: ViewBox width.
        title: Accessible title of the chart.

    Returns:
        A complete ``<svg>`` element; with no factors, a valid SVG stating
        "No explanation available".
    """
    if not factors:
        return svg.empty_svg(width, 80, title, "No explanation available", "chart-factors")

    row_h, bar_h, bottom = 24.0, 14.0, 8.0
    label_w = max(width * 0.38, 60.0)
    plot_x0 = label_w + 8
    plot_x1 = max(width - 54.0, plot_x0 + 20)
    zero_x = (plot_x0 + plot_x1) / 2
    half = (plot_x1 - plot_x0) / 2

    swatch = '<rect x="-5" y="-5" width="10" height="10" fill="{}"/>'
    legend, legend_rows = svg.legend(
        [
            (swatch.format(POSITIVE_COLOUR), "+ toward proposed action"),
            (swatch.format(NEGATIVE_COLOUR), "\u2212 against"),
        ],
        plot_x0 - 8 if width >= 400 else 0,
        10,
        width,
    )
    top = 28 + svg.LEGEND_ROW * (legend_rows - 1)
    height = round(top + row_h * len(factors) + bottom)

    labels = [str(label) for label, _ in factors]
    values = [_finite(v) for _, v in factors]
    max_abs = max((abs(v) for v in values if v is not None), default=0.0) or 1.0
    max_chars = int(label_w / svg.CHAR_WIDTH)
    summary = "; ".join(f"{label} {_signed(v)}" for label, v in zip(labels, values, strict=True))

    rows = []
    for index, (label, value) in enumerate(zip(labels, values, strict=True)):
        mid = top + index * row_h + row_h / 2
        row = [
            svg.title(f"{label}: {_signed(value)}"),
            svg.text(
                svg.truncate(label, max_chars),
                class_="label",
                x=label_w,
                y=mid,
                text_anchor="end",
                dominant_baseline="middle",
            ),
        ]
        if value is not None:
            length = abs(value) / max_abs * half
            positive = value >= 0
            row.append(
                svg.tag(
                    "rect",
                    class_="bar-pos" if positive else "bar-neg",
                    x=zero_x if positive else zero_x - length,
                    y=mid - bar_h / 2,
                    width=length,
                    height=bar_h,
                    fill=POSITIVE_COLOUR if positive else NEGATIVE_COLOUR,
                )
            )
        row.append(
            svg.text(
                _signed(value),
                class_="value",
                x=width - 4,
                y=mid,
                text_anchor="end",
                dominant_baseline="middle",
                font_variant_numeric="tabular-nums",
            )
        )
        rows.append(svg.tag("g", "".join(row), class_="factor"))

    axis = svg.tag(
        "line",
        class_="zero-axis",
        x1=zero_x,
        y1=top - 2,
        x2=zero_x,
        y2=height - bottom + 2,
        stroke=svg.INK,
        stroke_width=1,
    )
    return "".join(
        [
            svg.svg_open(width, height, title, css_class="chart-factors"),
            svg.tag("desc", svg.esc(summary)),
            legend,
            svg.tag("g", "".join(rows), class_="rows"),
            axis,
            "</svg>",
        ]
    )


# --------------------------------------------------------------------------- #
# Class-probability bars
# --------------------------------------------------------------------------- #


def _percent(probability: float) -> str:
    """Format a probability in [0, 1] as a whole percentage.

    Values that would round to 0% or 100% without being exactly that are shown
    as "<1%" / ">99%", so a clinician is never told an outcome is impossible or
    certain when the model did not say so.
    """
    pct = probability * 100
    if 0 < pct < 0.5:
        return "<1%"
    if 99.5 <= pct < 100:
        return ">99%"
    return f"{pct:.0f}%"


def probability_bars_svg(
    probabilities: Mapping[str, float],
    *,
    width: int = 360,
    title: str = "Model probabilities",
) -> str:
    """Render one horizontal bar per class with its percentage printed.

    Classes keep mapping order (e.g. decrease / maintain / increase). The most
    probable class is drawn in a darker blue with bold text. Probabilities are
    clamped to [0, 1]; non-finite values count as 0.

    Args:
        probabilities: Class label to probability in [0, 1].
        width: ViewBox width.
        title: Accessible title of the chart.

    Returns:
        A complete ``<svg>`` element; with no classes, a valid SVG stating
        "No probabilities available".
    """
    if not probabilities:
        return svg.empty_svg(width, 60, title, "No probabilities available", "chart-probs")

    row_h, bar_h, top, bottom = 26.0, 14.0, 4.0, 4.0
    items = [(str(label), min(max(_finite(p) or 0.0, 0.0), 1.0)) for label, p in probabilities.items()]
    height = round(top + row_h * len(items) + bottom)
    widest = max(svg.text_width(label) for label, _ in items)
    label_w = max(min(width * 0.3, widest + 12), 40.0)
    bar_x0 = label_w + 8
    bar_len = max(width - 46 - bar_x0, 10.0)
    best = max(p for _, p in items)
    max_chars = int(label_w / svg.CHAR_WIDTH)

    rows = []
    for index, (label, prob) in enumerate(items):
        mid = top + index * row_h + row_h / 2
        is_top = prob == best
        weight = 700 if is_top else None
        bar = {"x": bar_x0, "y": mid - bar_h / 2, "height": bar_h, "rx": 2}
        content = "".join(
            [
                svg.title(f"{label}: {_percent(prob)}"),
                svg.text(
                    svg.truncate(label, max_chars),
                    class_="label",
                    x=label_w,
                    y=mid,
                    text_anchor="end",
                    dominant_baseline="middle",
                    font_weight=weight,
                ),
                svg.tag("rect", class_="track", width=bar_len, fill=svg.TRACK, **bar),
                svg.tag(
                    "rect",
                    class_="prob",
                    width=prob * bar_len,
                    fill=svg.BLUE if is_top else svg.LIGHT_BLUE,
                    **bar,
                ),
                svg.text(
                    _percent(prob),
                    class_="pct",
                    x=width - 4,
                    y=mid,
                    text_anchor="end",
                    dominant_baseline="middle",
                    font_variant_numeric="tabular-nums",
                    font_weight=weight,
                ),
            ]
        )
        rows.append(svg.tag("g", content, class_="prob-row top" if is_top else "prob-row"))

    summary = "; ".join(f"{label} {_percent(p)}" for label, p in items)
    return "".join(
        [
            svg.svg_open(width, height, title, css_class="chart-probs"),
            svg.tag("desc", svg.esc(summary)),
            *rows,
            "</svg>",
        ]
    )
