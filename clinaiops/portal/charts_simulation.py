"""Charts of the simulation page (issue 10, `manage.py simulate`). Pure: built from clinaiops.portal.svg, no Django.

One horizontal bar per arm, its value printed beside it, so neither colour nor length is the only cue; the page
shows the same numbers in a table.
"""

from __future__ import annotations

from collections.abc import Sequence

from clinaiops.portal import svg

ARM_COLOURS = (svg.MUTED, svg.ORANGE, svg.BLUE)


def arm_bars_svg(
    items: Sequence[tuple[str, float, str]], *, title: str, scale: float | None = None, width: int = 560
) -> str:
    """Bars for `(label, value, shown)` rows, the i-th coloured ARM_COLOURS[i]; `shown` is the printed value and
    `scale` the value of a full-width bar (the largest value if None)."""
    if not items:
        return svg.empty_svg(width, 60, title, "No results", "chart-simulation")
    row_h, bar_h, top, bottom = 24.0, 14.0, 8.0, 8.0
    label_w = min(max(len(label) for label, _, _ in items) * svg.CHAR_WIDTH + 8, width * 0.45)
    plot_x0, plot_x1 = label_w + 8, width - 70.0
    full = scale if scale and scale > 0 else max((abs(v) for _, v, _ in items), default=0.0) or 1.0
    height = round(top + row_h * len(items) + bottom)
    rows = []
    for index, (label, value, shown) in enumerate(items):
        mid = top + index * row_h + row_h / 2
        length = min(abs(value), full) / full * (plot_x1 - plot_x0)
        rows.append(
            svg.tag(
                "g",
                "".join(
                    [
                        svg.title(f"{label}: {shown}"),
                        svg.text(
                            svg.truncate(label, int(label_w / svg.CHAR_WIDTH)),
                            x=label_w,
                            y=mid,
                            text_anchor="end",
                            dominant_baseline="middle",
                        ),
                        svg.tag(
                            "rect",
                            x=plot_x0,
                            y=mid - bar_h / 2,
                            width=max(length, 0.5),
                            height=bar_h,
                            fill=ARM_COLOURS[index % len(ARM_COLOURS)],
                        ),
                        svg.text(
                            shown,
                            x=plot_x0 + length + 6,
                            y=mid,
                            dominant_baseline="middle",
                            font_variant_numeric="tabular-nums",
                        ),
                    ]
                ),
                class_="arm-bar",
            )
        )
    summary = "; ".join(f"{label}: {shown}" for label, _, shown in items)
    return "".join(
        [
            svg.svg_open(width, height, title, css_class="chart-simulation"),
            svg.tag("desc", svg.esc(summary)),
            svg.tag("line", x1=plot_x0, y1=top, x2=plot_x0, y2=height - bottom, stroke=svg.GRID),
            *rows,
            "</svg>",
        ]
    )
