"""The model card's reliability diagram (calibration plot). Pure: standard library only, every label escaped.

compliance.charts draws bars and columns; a calibration plot needs confidence against accuracy on the unit square
with the diagonal of perfect calibration, and the number of rows in each bin, so a reader sees how much each point
weighs. Okabe-Ito colours and a number beside every point, as in compliance.charts.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

BLUE = "#0072B2"
VERMILLION = "#D55E00"
INK = "#1F2933"
MUTED = "#52606D"
GRID = "#E4E7EB"
_FONT = 'font-family="DejaVu Sans, Helvetica, Arial, sans-serif"'


def _esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def reliability_svg(
    bins: Sequence[tuple[float, float, float, int]], *, title: str, ece: float | None, width: int = 360
) -> str:
    """bins: (lower edge, mean confidence, accuracy, rows) per non-empty bin (inference.calibration)."""
    left, top, bottom, right = 40, 26, 34, 12
    size = width - left - right
    height = top + size + bottom

    def x(value: float) -> float:
        return left + size * value

    def y(value: float) -> float:
        return top + size * (1 - value)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="{_esc(title)}" viewBox="0 0 {width} {height}"'
        f' width="100%" class="report-chart"><title>{_esc(title)}</title>',
        f'<text x="0" y="14" font-size="12" font-weight="bold" fill="{INK}" {_FONT}>{_esc(title)}</text>',
        f'<rect x="{left}" y="{top}" width="{size}" height="{size}" fill="none" stroke="{GRID}"/>',
        f'<line x1="{x(0)}" y1="{y(0)}" x2="{x(1)}" y2="{y(1)}" stroke="{MUTED}" stroke-dasharray="4 3"/>',
    ]
    for tick in (0.0, 0.5, 1.0):
        parts.append(
            f'<text x="{x(tick):.1f}" y="{top + size + 12}" font-size="9" text-anchor="middle" fill="{MUTED}" '
            f"{_FONT}>{tick:g}</text>"
            f'<text x="{left - 4}" y="{y(tick) + 3:.1f}" font-size="9" text-anchor="end" fill="{MUTED}" {_FONT}>'
            f"{tick:g}</text>"
        )
    parts.append(
        f'<text x="{x(0.5):.1f}" y="{height - 6}" font-size="10" text-anchor="middle" fill="{INK}" {_FONT}>'
        "confidence of the proposed class</text>"
        f'<text x="10" y="{y(0.5):.1f}" font-size="10" text-anchor="middle" fill="{INK}" {_FONT} '
        f'transform="rotate(-90 10 {y(0.5):.1f})">observed accuracy</text>'
    )
    points = sorted(bins, key=lambda b: b[1])
    if len(points) > 1:
        path = " ".join(f"{x(conf):.1f},{y(acc):.1f}" for _, conf, acc, _ in points)
        parts.append(f'<polyline points="{path}" fill="none" stroke="{BLUE}" stroke-width="1.5"/>')
    for _, conf, acc, count in points:
        colour = VERMILLION if abs(acc - conf) > 0.1 else BLUE
        parts.append(
            f'<circle cx="{x(conf):.1f}" cy="{y(acc):.1f}" r="3.5" fill="{colour}">'
            f"<title>confidence {conf:.2f}, accuracy {acc:.2f}, {count} rows</title></circle>"
            f'<text x="{x(conf) + 5:.1f}" y="{y(acc) - 4:.1f}" font-size="8" fill="{MUTED}" {_FONT}>{count}</text>'
        )
    if ece is not None:
        parts.append(f'<text x="{left + 6}" y="{top + 14}" font-size="10" fill="{INK}" {_FONT}>ECE {ece:.3f}</text>')
    if not points:
        parts.append(
            f'<text x="{x(0.5):.1f}" y="{y(0.5):.1f}" font-size="10" text-anchor="middle" fill="{MUTED}" {_FONT}>'
            "no calibration bins recorded</text>"
        )
    parts.append("</svg>")
    return "".join(parts)
