"""Server-rendered inline SVG charts for the model pages: reliability (calibration), ROC, the confusion matrix and
per-subgroup fairness, plus the small ROC arithmetic they need.

Pure, like ``clinaiops.portal.charts_monitoring``: standard library only, built from ``clinaiops.portal.svg``,
every caller-supplied text escaped, ``role="img"`` with a title and a ``<desc>`` summary, a viewBox that scales,
Okabe-Ito colours, and every colour doubled by a shape or a line style. The templates put a table beside each
chart as its text alternative.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

from clinaiops.portal import svg

__all__ = [
    "GroupRates", "RocCurve", "confusion_svg", "fairness_dots_svg", "reliability_svg", "roc_curve", "roc_svg",
]  # fmt: skip

# One colour and one dash pattern per class (decrease, maintain, increase), so the lines read without colour.
CLASS_STYLES = ((svg.BLUE, None), (svg.ORANGE, "6 3"), (svg.VERMILLION, "2 3"))


def _diagonal(left: float, top: float, size: float) -> str:
    """The dashed diagonal of a square plot: perfect calibration on a reliability plot, chance on a ROC plot."""
    return svg.tag(
        "line", x1=left, y1=top + size, x2=left + size, y2=top, stroke=svg.MUTED, stroke_width=1,
        stroke_dasharray="4 3",
    )  # fmt: skip


def _axes(left: float, top: float, size_w: float, size_h: float, x_label: str, y_label: str) -> str:
    """A unit square from 0 to 1 on both axes with grid lines at quarters."""
    parts = []
    for step in range(5):
        share = step / 4
        x, y = left + share * size_w, top + size_h - share * size_h
        parts.append(svg.tag("line", x1=left, y1=y, x2=left + size_w, y2=y, stroke=svg.GRID, stroke_width=1))
        parts.append(svg.tag("line", x1=x, y1=top, x2=x, y2=top + size_h, stroke=svg.GRID, stroke_width=1))
        parts.append(svg.text(f"{share:g}", x=left - 4, y=y, text_anchor="end", dominant_baseline="middle",
                              font_size=9, fill=svg.MUTED))  # fmt: skip
        parts.append(svg.text(f"{share:g}", x=x, y=top + size_h + 12, text_anchor="middle", font_size=9,
                              fill=svg.MUTED))  # fmt: skip
    parts.append(svg.text(x_label, x=left + size_w / 2, y=top + size_h + 26, text_anchor="middle", fill=svg.INK))
    parts.append(
        svg.text(y_label, x=12, y=top + size_h / 2, text_anchor="middle", fill=svg.INK,
                 transform=f"rotate(-90 12 {svg.number(top + size_h / 2)})")
    )  # fmt: skip
    parts.append(svg.tag("rect", x=left, y=top, width=size_w, height=size_h, fill="none", stroke=svg.INK,
                         stroke_width=1))  # fmt: skip
    return "".join(parts)


def reliability_svg(
    bins: Sequence[tuple[float, float, float, int]], *, title: str = "Reliability: confidence against accuracy"
) -> str:
    """One marker per confidence bin at (mean confidence, accuracy), its area growing with the bin's rows, over
    the diagonal a perfectly calibrated model would follow. A marker below the diagonal is overconfident."""
    width, height, left, top, size = 360, 300, 44.0, 16.0, 240.0
    if not bins:
        return svg.empty_svg(width, 80, title, "No calibration bins stored", "chart-reliability")
    largest = max(count for *_, count in bins) or 1
    marks = []
    for lower, confidence, accuracy, count in bins:
        x, y = left + confidence * size, top + size - accuracy * size
        radius = 3 + 7 * (count / largest) ** 0.5
        gap = "below the diagonal: overconfident" if accuracy < confidence else "on or above the diagonal"
        marks.append(
            svg.tag(
                "g",
                svg.title(f"bin from {lower:.2f}: confidence {confidence:.2f}, accuracy {accuracy:.2f}, "
                          f"{count} rows ({gap})")
                + svg.tag("line", x1=x, y1=y, x2=x, y2=top + size - confidence * size, stroke=svg.VERMILLION,
                          stroke_width=1.5)
                + svg.tag("circle", cx=x, cy=y, r=radius, fill=svg.BLUE, fill_opacity=0.75, stroke=svg.WHITE),
                class_="bin",
            )
        )  # fmt: skip
    summary = "; ".join(
        f"confidence {confidence:.2f} → accuracy {accuracy:.2f} ({count} rows)"
        for _, confidence, accuracy, count in bins
    )
    return "".join(
        [
            svg.svg_open(width, height, title, css_class="chart-reliability"),
            svg.tag("desc", svg.esc(f"Diagonal = perfect calibration. {summary}")),
            _axes(left, top, size, size, "mean confidence in the bin", "share correct"),
            _diagonal(left, top, size),
            *marks,
            "</svg>",
        ]
    )


@dataclass(frozen=True)
class RocCurve:
    """One class against the rest: its (false-positive rate, true-positive rate) points and the area under them."""

    label: str
    points: tuple[tuple[float, float], ...]
    auc: float | None  # None when the class, or the rest, has no rows
    positives: int
    negatives: int


def roc_curve(label: str, scores: Sequence[float], positive: Sequence[bool]) -> RocCurve:
    """The ROC curve of `scores` for the rows marked `positive`, with tied scores taken together (so the curve
    does not depend on row order), and its trapezoidal area."""
    pos = sum(1 for p in positive if p)
    neg = len(positive) - pos
    if pos == 0 or neg == 0:
        return RocCurve(label, ((0.0, 0.0), (1.0, 1.0)), None, pos, neg)
    ordered = sorted(zip(scores, positive, strict=True), key=lambda item: -item[0])
    points = [(0.0, 0.0)]
    tp = fp = 0
    for index, (score, is_positive) in enumerate(ordered):
        if is_positive:
            tp += 1
        else:
            fp += 1
        if index + 1 == len(ordered) or ordered[index + 1][0] != score:
            points.append((fp / neg, tp / pos))
    area = sum((x1 - x0) * (y0 + y1) / 2 for (x0, y0), (x1, y1) in itertools.pairwise(points))
    return RocCurve(label, tuple(points), area, pos, neg)


def roc_svg(curves: Sequence[RocCurve], *, title: str = "ROC, each action against the others") -> str:
    width, height, left, top, size = 360, 330, 44.0, 16.0, 240.0
    drawable = [curve for curve in curves if curve.auc is not None]
    if not drawable:
        return svg.empty_svg(width, 80, title, "No class has both positive and negative rows", "chart-roc")
    lines = []
    swatches = []
    for index, curve in enumerate(drawable):
        colour, dash = CLASS_STYLES[index % len(CLASS_STYLES)]
        path = " ".join(
            f"{'M' if i == 0 else 'L'}{svg.number(left + x * size)},{svg.number(top + size - y * size)}"
            for i, (x, y) in enumerate(curve.points)
        )
        name = f"{curve.label} (AUC {curve.auc:.3f})"
        lines.append(
            svg.tag("path", svg.title(name), d=path, fill="none", stroke=colour, stroke_width=2, stroke_dasharray=dash,
                    class_="roc-line")
        )  # fmt: skip
        swatches.append(
            (svg.tag("line", x1=-7, y1=0, x2=7, y2=0, stroke=colour, stroke_width=2, stroke_dasharray=dash), name)
        )
    legend, _ = svg.legend(swatches, left, top + size + 40, width - 4)
    summary = "; ".join(
        f"{curve.label}: AUC {curve.auc:.3f} over {curve.positives} positive and {curve.negatives} other rows"
        for curve in drawable
    )
    return "".join(
        [
            svg.svg_open(width, height, title, css_class="chart-roc"),
            svg.tag("desc", svg.esc(f"Dashed diagonal = chance. {summary}")),
            _axes(left, top, size, size, "false-positive rate", "true-positive rate"),
            _diagonal(left, top, size),
            *lines,
            legend,
            "</svg>",
        ]
    )


def confusion_svg(
    matrix: Sequence[Sequence[int]], labels: Sequence[str], *, title: str = "Confusion matrix (validation rows)"
) -> str:
    """Rows: the label; columns: the model's top choice. Each cell prints its count and its share of the row, and
    its shade grows with that share (the text, not the shade, carries the number)."""
    n = len(labels)
    cell, left, top = 78.0, 86.0, 40.0
    width, height = int(left + cell * n + 8), int(top + cell * n + 30)
    if n == 0 or len(matrix) != n:
        return svg.empty_svg(360, 80, title, "No predictions to count", "chart-confusion")
    parts = [
        svg.text("model's choice →", x=left + cell * n / 2, y=12, text_anchor="middle", fill=svg.MUTED),
        svg.text("label ↓", x=4, y=top - 8, fill=svg.MUTED),
    ]
    for j, label in enumerate(labels):
        parts.append(svg.text(label, x=left + cell * (j + 0.5), y=top - 8, text_anchor="middle"))
    summary = []
    for i, row in enumerate(matrix):
        total = sum(row) or 1
        parts.append(svg.text(labels[i], x=left - 6, y=top + cell * (i + 0.5), text_anchor="end",
                              dominant_baseline="middle"))  # fmt: skip
        for j, count in enumerate(row):
            share = count / total
            x, y = left + cell * j, top + cell * i
            ink = svg.WHITE if share > 0.55 else svg.INK
            parts.append(
                svg.tag(
                    "g",
                    svg.title(f"label {labels[i]}, model chose {labels[j]}: {count} ({share:.0%} of the row)")
                    + svg.tag("rect", x=x + 1, y=y + 1, width=cell - 2, height=cell - 2, fill=svg.BLUE,
                              fill_opacity=round(0.08 + 0.85 * share, 3), stroke=svg.GRID)
                    + svg.text(str(count), x=x + cell / 2, y=y + cell / 2 - 6, text_anchor="middle",
                               dominant_baseline="middle", fill=ink, font_weight=700 if i == j else None)
                    + svg.text(f"{share:.0%}", x=x + cell / 2, y=y + cell / 2 + 10, text_anchor="middle",
                               dominant_baseline="middle", fill=ink, font_size=9),
                    class_="cell",
                )
            )  # fmt: skip
        summary.append(f"label {labels[i]}: " + ", ".join(f"{labels[j]} {c}" for j, c in enumerate(row)))
    return "".join(
        [
            svg.svg_open(width, height, title, css_class="chart-confusion"),
            svg.tag("desc", svg.esc("; ".join(summary))),
            *parts,
            "</svg>",
        ]
    )


@dataclass(frozen=True)
class GroupRates:
    """One subgroup's rates for the fairness chart (None: undefined for the group)."""

    group: str
    n: int
    tpr: float | None
    fpr: float | None
    selection_rate: float | None
    judged: bool


def fairness_dots_svg(groups: Sequence[GroupRates], *, title: str, width: int = 860) -> str:
    """One row per subgroup with its true-positive rate (circle), false-positive rate (square) and selection rate
    (diamond) on a 0–1 scale. Groups too small to judge are greyed and say so."""
    if not groups:
        return svg.empty_svg(width, 80, title, "No subgroups were measured", "chart-fairness")

    def marker(kind: str, x: float, y: float, colour: str) -> str:
        if kind == "circle":
            return svg.tag("circle", cx=x, cy=y, r=5, fill=colour)
        if kind == "square":
            return svg.tag("rect", x=x - 4.5, y=y - 4.5, width=9, height=9, fill=colour)
        return svg.tag("path", d=f"M{svg.number(x)},{svg.number(y - 6)} l6,6 l-6,6 l-6,-6 z", fill=colour)

    styles = (("tpr", "true-positive rate", "circle", svg.BLUE), ("fpr", "false-positive rate", "square",
              svg.VERMILLION), ("selection_rate", "selection rate", "diamond", svg.ORANGE))  # fmt: skip
    label_w = min(max(max(len(g.group) + 8 for g in groups) * svg.CHAR_WIDTH, 90.0), width * 0.38)
    x0, x1 = label_w + 10, width - 16.0
    legend, legend_rows = svg.legend(
        [(marker(kind, 0, 0, colour), name) for _, name, kind, colour in styles], x0, 10, width
    )
    row_h, bottom = 22.0, 22.0
    top = 10 + svg.LEGEND_ROW * legend_rows + 6
    height = round(top + row_h * len(groups) + bottom)

    def x_of(value: float) -> float:
        return x0 + min(max(value, 0.0), 1.0) * (x1 - x0)

    rows = []
    for index, group in enumerate(groups):
        mid = top + index * row_h + row_h / 2
        label = f"{group.group} (n={group.n})" + ("" if group.judged else " · too few")
        parts = [
            svg.text(svg.truncate(label, int(label_w / svg.CHAR_WIDTH)), x=label_w, y=mid, text_anchor="end",
                     dominant_baseline="middle", fill=svg.INK if group.judged else svg.MUTED),
            svg.tag("line", x1=x0, y1=mid, x2=x1, y2=mid, stroke=svg.TRACK, stroke_width=6),
        ]  # fmt: skip
        described = []
        for attr, name, kind, colour in styles:
            value = getattr(group, attr)
            if value is None:
                described.append(f"{name} undefined")
                continue
            parts.append(marker(kind, x_of(value), mid, colour if group.judged else svg.MUTED))
            described.append(f"{name} {value:.2f}")
        parts.insert(0, svg.title(f"{group.group}, {group.n} rows: " + ", ".join(described)))
        rows.append(svg.tag("g", "".join(parts), class_="group"))
    ticks = []
    for step in range(5):
        x = x_of(step / 4)
        ticks.append(svg.tag("line", x1=x, y1=top - 2, x2=x, y2=height - bottom, stroke=svg.GRID, stroke_width=1))
        ticks.append(svg.text(f"{step / 4:g}", x=x, y=height - bottom + 13, text_anchor="middle", font_size=9,
                              fill=svg.MUTED))  # fmt: skip
    summary = "; ".join(
        f"{g.group} n={g.n} TPR {'n/a' if g.tpr is None else f'{g.tpr:.2f}'} "
        f"FPR {'n/a' if g.fpr is None else f'{g.fpr:.2f}'}"
        for g in groups
    )
    return "".join(
        [
            svg.svg_open(width, height, title, css_class="chart-fairness"),
            svg.tag("desc", svg.esc(summary)),
            legend,
            *ticks,
            *rows,
            "</svg>",
        ]
    )
