"""Server-rendered inline SVG charts for the monitoring pages: drift histograms and PSI bars.

Pure, like ``clinaiops.portal.charts``, and built from the same public blocks (``clinaiops.portal.svg``) with
the same conventions: standard library only, every caller-supplied text escaped, ``role="img"`` with a title
and a description, a viewBox that scales, Okabe-Ito colours, and every colour doubled by position or text so the
charts read without colour.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import pairwise

from clinaiops.portal import svg

__all__ = ["Series", "bin_labels", "drift_histogram_svg", "psi_bars_svg", "series_svg"]

REFERENCE_COLOUR = svg.LIGHT_BLUE
CURRENT_COLOUR = svg.VERMILLION
SEVERITY_COLOUR = {"stable": svg.BLUE, "watch": svg.ORANGE, "severe": svg.CRISIS_RED}


def _short(value: float, digits: int = 4) -> str:
    """A number in at most `digits` significant figures: 0.0832, 12.5, 1350."""
    if value == 0 or not math.isfinite(value):
        return "0" if value == 0 else str(value)
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(value))))
    text = f"{value:.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def bin_labels(bin_edges: Sequence[float], categories: Sequence[str]) -> list[str]:
    """Readable bin names: the categories, or numeric bins as "≤ a", "a–b", …, "> z".

    ``bin_edges`` follow ``inference.drift.FeatureDrift``: the outer edges are the smallest and largest values
    seen, and the inner ones are the cut points of right-closed bins.
    """
    if categories:
        return [str(category) for category in categories]
    cuts = list(bin_edges[1:-1])
    if not cuts:
        return ["all"] if len(bin_edges) >= 2 else []
    labels = [f"\u2264 {_short(cuts[0])}"]
    labels += [f"{_short(low)}\u2013{_short(high)}" for low, high in pairwise(cuts)]
    labels.append(f"> {_short(cuts[-1])}")
    return labels


def _percent(share: float) -> str:
    return f"{share * 100:.1f}%"


def drift_histogram_svg(
    *,
    reference: Sequence[float],
    current: Sequence[float],
    labels: Sequence[str],
    title: str,
    cuts: Sequence[float] = (),
    width: int = 440,
) -> str:
    """Side-by-side bars per bin: the training snapshot's share (left, light blue) and the current window's
    (right, vermillion). Position and the legend tell the two apart without colour; each bin's tooltip gives
    its range and both exact shares.

    Numeric bins pass their inner ``cuts`` (one fewer than the bins), which are printed at the boundaries
    between bars, like an axis; categories are printed under their bars."""
    if not reference or len(reference) != len(current) or len(labels) != len(reference):
        return svg.empty_svg(width, 80, title, "No histogram available", "chart-drift-hist")
    height, top, bottom, left, right = 190, 26.0, 34.0, 34.0, 6.0
    plot_w, plot_h = width - left - right, height - top - bottom
    largest = max(max(reference), max(current), 0.01)
    scale_top = math.ceil(largest * 10) / 10 if largest > 0.1 else math.ceil(largest * 20) / 20
    slot = plot_w / len(reference)
    bar_w = max(slot * 0.38, 1.0)
    max_chars = max(int(slot / (svg.CHAR_WIDTH * 0.8)), 3)

    swatch = '<rect x="-5" y="-5" width="10" height="10" fill="{}"/>'
    legend, _ = svg.legend(
        [(swatch.format(REFERENCE_COLOUR), "training snapshot"), (swatch.format(CURRENT_COLOUR), "current window")],
        left,
        10,
        width,
    )
    grid = []
    for step in range(3):
        share = scale_top * step / 2
        y = top + plot_h - share / scale_top * plot_h
        grid.append(svg.tag("line", x1=left, y1=y, x2=width - right, y2=y, stroke=svg.GRID, stroke_width=1))
        grid.append(svg.text(_percent(share).replace(".0%", "%"), x=left - 4, y=y, text_anchor="end",
                          dominant_baseline="middle", fill=svg.MUTED, font_size=9))  # fmt: skip

    bars = []
    for index, (label, ref_share, cur_share) in enumerate(zip(labels, reference, current, strict=True)):
        x0 = left + index * slot + slot / 2
        group = [svg.title(f"{label}: training {_percent(ref_share)}, current {_percent(cur_share)}")]
        for share, x, colour, css in (
            (ref_share, x0 - bar_w - 1, REFERENCE_COLOUR, "bar-reference"),
            (cur_share, x0 + 1, CURRENT_COLOUR, "bar-current"),
        ):
            bar_h = max(share, 0.0) / scale_top * plot_h
            group.append(
                svg.tag("rect", class_=css, x=x, y=top + plot_h - bar_h, width=bar_w, height=bar_h, fill=colour)
            )
        if not cuts:
            group.append(
                svg.text(svg.truncate(label, max_chars), class_="bin-label", x=x0, y=height - bottom + 14,
                      text_anchor="middle", font_size=9, fill=svg.INK)
            )  # fmt: skip
        bars.append(svg.tag("g", "".join(group), class_="bin"))
    ticks = []
    if len(cuts) == len(reference) - 1:
        for index, cut in enumerate(cuts, start=1):
            x = left + index * slot
            ticks.append(
                svg.tag("line", x1=x, y1=top + plot_h, x2=x, y2=top + plot_h + 4, stroke=svg.INK, stroke_width=1)
            )
            ticks.append(
                svg.text(_short(cut, digits=3), class_="cut-label", x=x, y=height - bottom + 14, text_anchor="middle",
                      font_size=9, fill=svg.INK)
            )  # fmt: skip
    summary = "; ".join(
        f"{label}: training {_percent(r)}, current {_percent(c)}"
        for label, r, c in zip(labels, reference, current, strict=True)
    )
    return "".join(
        [
            svg.svg_open(width, height, title, css_class="chart-drift-hist"),
            svg.tag("desc", svg.esc(summary)),
            legend,
            *grid,
            *bars,
            *ticks,
            svg.tag(
                "line", x1=left, y1=top + plot_h, x2=width - right, y2=top + plot_h, stroke=svg.INK, stroke_width=1
            ),
            "</svg>",
        ]
    )


def psi_bars_svg(
    items: Sequence[tuple[str, float, str]],
    *,
    watch: float = 0.1,
    severe: float = 0.25,
    noise_floor: float | None = None,
    width: int = 720,
    title: str = "Population stability index by feature",
) -> str:
    """One horizontal bar per ``(name, psi, severity)`` with dashed lines at the watch and severe thresholds
    (and a dotted line at the PSI sampling noise alone would give, if known). The severity is printed beside
    each value, so colour is never the only cue."""
    if not items:
        return svg.empty_svg(width, 80, title, "No features were compared", "chart-psi")
    row_h, bar_h, top, bottom = 20.0, 12.0, 30.0, 22.0
    label_w = min(max(max(len(name) for name, _, _ in items) * svg.CHAR_WIDTH + 8, 80.0), width * 0.32)
    plot_x0, plot_x1 = label_w + 8, width - 110.0
    finite = [psi for _, psi, _ in items if math.isfinite(psi)]
    scale = max(max(finite, default=0.0), severe * 1.25)
    height = round(top + row_h * len(items) + bottom)

    def x_of(value: float) -> float:
        return plot_x0 + min(max(value, 0.0), scale) / scale * (plot_x1 - plot_x0)

    rows = []
    for index, (name, value, severity) in enumerate(items):
        mid = top + index * row_h + row_h / 2
        shown = f"{value:.3f}" if math.isfinite(value) else "n/a"
        row = [
            svg.title(f"{name}: PSI {shown}, {severity}"),
            svg.text(svg.truncate(name, int(label_w / svg.CHAR_WIDTH)), class_="label", x=label_w, y=mid,
                  text_anchor="end", dominant_baseline="middle"),
        ]  # fmt: skip
        if math.isfinite(value):
            row.append(
                svg.tag("rect", class_=f"psi psi-{severity}", x=plot_x0, y=mid - bar_h / 2,
                     width=max(x_of(value) - plot_x0, 0.5), height=bar_h, fill=SEVERITY_COLOUR.get(severity, svg.MUTED))
            )  # fmt: skip
        row.append(
            svg.text(f"{shown} {severity}", class_="value", x=plot_x1 + 6, y=mid, dominant_baseline="middle",
                  font_weight=700 if severity == "severe" else None, font_variant_numeric="tabular-nums")
        )  # fmt: skip
        rows.append(svg.tag("g", "".join(row), class_="psi-row"))

    lines = []
    marks = [(watch, f"watch {watch:g}", "6 3"), (severe, f"severe {severe:g}", "6 3")]
    if noise_floor is not None and math.isfinite(noise_floor) and noise_floor > 0:
        marks.append((noise_floor, "noise", "2 3"))
    for value, label, dash in marks:
        x = x_of(value)
        lines.append(
            svg.tag("line", class_="threshold", x1=x, y1=top - 4, x2=x, y2=height - bottom + 4, stroke=svg.INK,
                 stroke_width=1, stroke_dasharray=dash)
        )  # fmt: skip
        lines.append(svg.text(label, x=x, y=top - 10, text_anchor="middle", font_size=10, fill=svg.MUTED))
    summary = "; ".join(
        f"{name} {psi:.3f} {severity}" if math.isfinite(psi) else f"{name} n/a" for name, psi, severity in items
    )
    return "".join(
        [
            svg.svg_open(width, height, title, css_class="chart-psi"),
            svg.tag("desc", svg.esc(f"Thresholds: watch {watch}, severe {severe}. {summary}")),
            svg.tag("g", "".join(rows), class_="rows"),
            *lines,
            "</svg>",
        ]
    )


# --- Series over time (issue 11: drift and performance over time, not one report at a time) --------------------

SERIES_STYLES = (
    (svg.BLUE, None, "circle"),
    (svg.VERMILLION, "6 3", "square"),
    (svg.ORANGE, "2 3", "diamond"),
    (svg.PURPLE, "8 2 2 2", "circle"),
)


@dataclass(frozen=True)
class Series:
    """One line of a time chart: its name and its (time, value) points, oldest first."""

    label: str
    points: tuple[tuple[datetime, float], ...]


def _marker(kind: str, x: float, y: float, colour: str) -> str:
    if kind == "square":
        return svg.tag("rect", x=x - 3.5, y=y - 3.5, width=7, height=7, fill=colour)
    if kind == "diamond":
        return svg.tag("path", d=f"M{svg.number(x)},{svg.number(y - 5)} l5,5 l-5,5 l-5,-5 z", fill=colour)
    return svg.tag("circle", cx=x, cy=y, r=3.5, fill=colour)


def _nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 or 10 times a power of ten at or above `value`, so that quarter ticks read
    as round numbers (0.1 → 0.025, 0.05, …)."""
    power = 10.0 ** math.floor(math.log10(value))
    return float(next(step * power for step in (1, 2, 2.5, 5, 10) if step * power >= value * (1 - 1e-9)))


def series_svg(
    series: Sequence[Series],
    *,
    title: str,
    y_label: str,
    percent: bool = False,
    thresholds: Sequence[tuple[float, str]] = (),
    width: int = 720,
    height: int = 230,
) -> str:
    """Lines over time, one per series, each with its own colour, dash pattern and marker shape (so they read
    without colour), optional dashed threshold lines, and a ``<desc>`` listing every point."""
    drawn = [s for s in series if s.points]
    if not drawn:
        return svg.empty_svg(width, 80, title, "Nothing measured yet", "chart-series")
    top, bottom, left, right = 30.0, 30.0, 48.0, 12.0
    plot_w, plot_h = width - left - right, height - top - bottom
    times = [t.timestamp() for s in drawn for t, _ in s.points]
    t0, t1 = min(times), max(times)
    span = (t1 - t0) or 86400.0
    values = [v for s in drawn for _, v in s.points] + [value for value, _ in thresholds]
    y_top = _nice_ceiling(max(max(values) * 1.05, 1e-9))
    if percent:
        y_top = min(max(y_top, 0.1), 1.0)

    def x_of(t: datetime) -> float:
        return left + ((t.timestamp() - t0) / span if t1 > t0 else 0.5) * plot_w

    def y_of(v: float) -> float:
        return top + plot_h - min(max(v, 0.0), y_top) / y_top * plot_h

    def shown(v: float) -> str:
        return f"{v * 100:.0f} %" if percent else _short(v, 3)

    parts = []
    mantissa = round(y_top / 10 ** math.floor(math.log10(y_top)), 3)
    ticks = 5 if mantissa in (2.5, 5) else 4  # 5 % steps for a 25 % axis, 10 % steps for a 50 % one
    for step in range(ticks + 1):
        v = y_top * step / ticks
        y = y_of(v)
        parts.append(svg.tag("line", x1=left, y1=y, x2=width - right, y2=y, stroke=svg.GRID, stroke_width=1))
        parts.append(svg.text(shown(v), x=left - 4, y=y, text_anchor="end", dominant_baseline="middle",
                              font_size=9, fill=svg.MUTED))  # fmt: skip
    first, last = datetime.fromtimestamp(t0, tz=UTC), datetime.fromtimestamp(t1, tz=UTC)
    parts.append(svg.text(f"{first:%d %b}", x=left, y=height - 10, font_size=9, fill=svg.MUTED))
    parts.append(svg.text(f"{last:%d %b}", x=width - right, y=height - 10, text_anchor="end", font_size=9,
                          fill=svg.MUTED))  # fmt: skip
    parts.append(svg.text(y_label, x=left + plot_w / 2, y=height - 10, text_anchor="middle", font_size=10,
                          fill=svg.MUTED))  # fmt: skip
    for value, label in thresholds:
        y = y_of(value)
        parts.append(svg.tag("line", class_="threshold", x1=left, y1=y, x2=width - right, y2=y, stroke=svg.INK,
                             stroke_width=1, stroke_dasharray="6 3"))  # fmt: skip
        parts.append(svg.text(label, x=width - right - 2, y=y - 4, text_anchor="end", font_size=9, fill=svg.MUTED))
    swatches = []
    summary = []
    for index, line in enumerate(drawn):
        colour, dash, kind = SERIES_STYLES[index % len(SERIES_STYLES)]
        path = " ".join(
            f"{'M' if i == 0 else 'L'}{svg.number(x_of(t))},{svg.number(y_of(v))}"
            for i, (t, v) in enumerate(line.points)
        )
        marks = "".join(
            svg.tag(
                "g",
                svg.title(f"{line.label}, {t:%d %b %Y %H:%M}: {shown(v)}") + _marker(kind, x_of(t), y_of(v), colour),
            )
            for t, v in line.points
        )
        parts.append(
            svg.tag("g", svg.tag("path", d=path, fill="none", stroke=colour, stroke_width=2, stroke_dasharray=dash)
                    + marks, class_="series")
        )  # fmt: skip
        swatches.append(
            (svg.tag("line", x1=-7, y1=0, x2=7, y2=0, stroke=colour, stroke_width=2, stroke_dasharray=dash)
             + _marker(kind, 0, 0, colour), line.label)
        )  # fmt: skip
        summary.append(f"{line.label}: " + ", ".join(f"{t:%d %b} {shown(v)}" for t, v in line.points))
    legend, _ = svg.legend(swatches, left, 12, width - right)
    return "".join(
        [
            svg.svg_open(width, height, title, css_class="chart-series"),
            svg.tag("desc", svg.esc("; ".join(summary))),
            legend,
            *parts,
            svg.tag(
                "line", x1=left, y1=top + plot_h, x2=width - right, y2=top + plot_h, stroke=svg.INK, stroke_width=1
            ),
            "</svg>",
        ]
    )
