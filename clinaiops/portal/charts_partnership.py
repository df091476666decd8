"""Charts of the visit summary (clinaiops.partnership.summary), built from the shared SVG pieces (svg.py).

Pure: the standard library only, no Django. Each chart carries a ``<desc>`` summary; the page beside it also
prints the same numbers as a table, the chart's text alternative.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from clinaiops.portal import svg
from clinaiops.portal.svg import BLUE, GRID, INK, LIGHT_BLUE, MUTED, TRACK, VERMILLION, number, tag, text

SYSTOLIC_COLOUR = VERMILLION
DIASTOLIC_COLOUR = BLUE


@dataclass(frozen=True)
class WeeklyPoint:
    """One week's mean blood pressure (None: no readings that week)."""

    start: date
    mean_sbp: float | None
    mean_dbp: float | None


def weekly_bp_svg(
    weeks: Sequence[WeeklyPoint], *, target_sbp: int, target_dbp: int, width: int = 640, height: int = 240
) -> str:
    """Weekly mean systolic (solid, circles) and diastolic (dashed, squares) against the patient's target lines."""
    label = "Weekly average blood pressure against the target"
    measured = [w for w in weeks if w.mean_sbp is not None and w.mean_dbp is not None]
    if not measured:
        return svg.empty_svg(width, height, label, "No readings in this period.", "summary-chart")
    left, right, top, bottom = 44.0, 12.0, 26.0, 34.0
    plot_w, plot_h = width - left - right, height - top - bottom
    values = [v for w in measured for v in (w.mean_sbp, w.mean_dbp) if v is not None] + [target_sbp, target_dbp]
    low = max(0.0, (min(values) // 10) * 10 - 10)
    high = (max(values) // 10) * 10 + 10
    n = len(weeks)

    def x_of(index: int) -> float:
        return left + (plot_w * (index + 0.5) / n)

    def y_of(value: float) -> float:
        return top + plot_h * (1 - (value - low) / (high - low))

    parts = [svg.svg_open(width, height, label, css_class="summary-chart")]
    sbp_means = [w.mean_sbp for w in measured if w.mean_sbp is not None]
    parts.append(
        tag(
            "desc",
            svg.esc(
                f"{len(measured)} weeks with readings. Weekly mean systolic from {min(sbp_means):.0f} to "
                f"{max(sbp_means):.0f} mmHg; target below {target_sbp}/{target_dbp} mmHg."
            ),
        )
    )
    parts.append(tag("rect", x=left, y=top, width=plot_w, height=plot_h, fill=TRACK))
    tick = low
    while tick <= high:
        y = y_of(tick)
        parts.append(tag("line", x1=left, x2=left + plot_w, y1=y, y2=y, stroke=GRID))
        parts.append(text(number(tick), x=left - 6, y=y, text_anchor="end", dominant_baseline="middle", fill=MUTED))
        tick += 10
    for value, name in ((target_sbp, "systolic"), (target_dbp, "diastolic")):
        y = y_of(value)
        parts.append(
            tag("line", x1=left, x2=left + plot_w, y1=y, y2=y, stroke=INK, stroke_width=1.5, stroke_dasharray="2 3")
        )
        # Plain text above the line: WeasyPrint ignores paint-order, so a halo would hide the label in the PDF.
        parts.append(text(f"target {name} {value}", x=left + 4, y=y - 4, fill=INK))
    step = max(1, n // 8)
    for index, week in enumerate(weeks):
        if index % step == 0:
            parts.append(text(f"{week.start:%d %b}", x=x_of(index), y=top + plot_h + 16, text_anchor="middle"))
    for attr, colour, dash, marker in (
        ("mean_sbp", SYSTOLIC_COLOUR, None, "circle"),
        ("mean_dbp", DIASTOLIC_COLOUR, "6 4", "square"),
    ):
        points = [(x_of(i), y_of(v)) for i, w in enumerate(weeks) if (v := getattr(w, attr)) is not None]
        path = " ".join(f"{number(x)},{number(y)}" for x, y in points)
        parts.append(tag("polyline", points=path, fill="none", stroke=colour, stroke_width=2, stroke_dasharray=dash))
        for (x, y), week in zip(points, [w for w in weeks if getattr(w, attr) is not None], strict=True):
            tip = svg.title(f"week of {week.start:%d %b}: {getattr(week, attr):.0f} mmHg")
            if marker == "circle":
                parts.append(tag("circle", tip, cx=x, cy=y, r=3.5, fill=colour))
            else:
                parts.append(tag("rect", tip, x=x - 3.5, y=y - 3.5, width=7, height=7, fill=colour))
    legend, _ = svg.legend(
        [
            (tag("circle", r=3.5, fill=SYSTOLIC_COLOUR), "Systolic (weekly mean)"),
            (tag("rect", x=-3.5, y=-3.5, width=7, height=7, fill=DIASTOLIC_COLOUR), "Diastolic (weekly mean)"),
            (tag("line", x1=-7, x2=7, y1=0, y2=0, stroke=INK, stroke_dasharray="2 3"), "Target"),
        ],
        left,
        12,
        width - right,
    )
    parts.append(legend)
    parts.append("</svg>")
    return "".join(parts)


def progress_bar_svg(fraction: float | None, *, label: str, width: int = 160, height: int = 14) -> str:
    """A small bar of how far a goal is towards its target (1 = met)."""
    if fraction is None:
        return svg.empty_svg(width, height, label, "no data", "goal-bar")
    filled = max(0.0, min(1.0, fraction)) * width
    return "".join(
        [
            svg.svg_open(width, height, label, css_class="goal-bar"),
            tag("rect", x=0, y=0, width=width, height=height, rx=3, fill=TRACK),
            tag("rect", x=0, y=0, width=filled, height=height, rx=3, fill=LIGHT_BLUE if fraction < 1 else BLUE),
            "</svg>",
        ]
    )
