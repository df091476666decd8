"""SVG charts for the compliance reports (HTML and PDF). Pure: standard library only, every label escaped.

The portal's chart module (clinaiops.portal.charts) is a sibling surface that compliance may not import (DESIGN §9),
and the reports need only two shapes: horizontal bars (counts by action, outcome, actor) and columns over days.
Colours are Okabe-Ito, as in the portal; every bar also carries its number as text, so colour is never the only
encoding. WeasyPrint renders inline SVG natively, so the PDF and the page show the same chart.
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


def _num(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"


_CHAR_PX = 6.2  # DejaVu Sans at 10 px, a little over its average advance, so a label never runs into its bar
_LABEL_MAX_PX = 300


def _fit(label: str, chars: int) -> str:
    """The label cut to `chars` with an ellipsis, keeping a trailing "(…)" qualifier whole, since it often carries
    the meaning ("(against)", "(toward)")."""
    if len(label) <= chars:
        return label
    head, qualifier = label, ""
    if label.endswith(")") and " (" in label:
        head, qualifier = label[: label.rindex(" (")], label[label.rindex(" (") :]
        if len(qualifier) > chars // 2:
            head, qualifier = label, ""
    room = max(chars - len(qualifier) - 1, 1)
    return head[:room].rstrip() + "…" + qualifier


def bar_chart_svg(items: Sequence[tuple[str, float]], *, title: str, width: int = 640, highlight: str = "") -> str:
    """Horizontal bars, largest first as given. `highlight` names a label drawn in vermillion (for example "denied")."""
    if not items:
        return _empty(title, width)
    row, top = 18, 26
    longest = max(len(label) for label, _ in items)
    label_chars = min(longest, int((_LABEL_MAX_PX - 10) / _CHAR_PX))
    label_width = int(label_chars * _CHAR_PX + 10.5)
    height = top + row * len(items) + 8
    peak = max(value for _, value in items) or 1.0
    bar_space = width - label_width - 70
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="{_esc(title)}" viewBox="0 0 {width} {height}"'
        f' width="100%" class="report-chart"><title>{_esc(title)}</title>',
        f'<text x="0" y="14" font-size="12" font-weight="bold" fill="{INK}" {_FONT}>{_esc(title)}</text>',
    ]
    for index, (label, value) in enumerate(items):
        y = top + index * row
        length = max(1.0, bar_space * value / peak)
        colour = VERMILLION if highlight and label == highlight else BLUE
        parts.append(
            f'<text x="{label_width - 6}" y="{y + 12}" font-size="10" text-anchor="end" fill="{INK}" {_FONT}>'
            f"{_esc(_fit(label, label_chars))}</text>"
            f'<rect x="{label_width}" y="{y + 2}" width="{length:.1f}" height="{row - 6}" fill="{colour}"/>'
            f'<text x="{label_width + length + 4:.1f}" y="{y + 12}" font-size="10" fill="{MUTED}" {_FONT}>'
            f"{_num(value)}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def column_chart_svg(items: Sequence[tuple[str, float]], *, title: str, width: int = 640, height: int = 180) -> str:
    """Columns in the order given (days, oldest first); at most about eight x labels are written."""
    if not items:
        return _empty(title, width)
    left, bottom, top = 44, 28, 24
    plot_width, plot_height = width - left - 8, height - top - bottom
    peak = max(value for _, value in items) or 1.0
    step = plot_width / len(items)
    every = max(1, len(items) // 8)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="{_esc(title)}" viewBox="0 0 {width} {height}"'
        f' width="100%" class="report-chart"><title>{_esc(title)}</title>',
        f'<text x="0" y="14" font-size="12" font-weight="bold" fill="{INK}" {_FONT}>{_esc(title)}</text>',
        f'<line x1="{left}" y1="{top + plot_height}" x2="{width - 8}" y2="{top + plot_height}" stroke="{GRID}"/>',
        f'<text x="{left - 4}" y="{top + 8}" font-size="9" text-anchor="end" fill="{MUTED}" {_FONT}>'
        f"{_num(peak)}</text>",
        f'<text x="{left - 4}" y="{top + plot_height}" font-size="9" text-anchor="end" fill="{MUTED}" {_FONT}>0</text>',
    ]
    for index, (label, value) in enumerate(items):
        bar_height = plot_height * value / peak
        x = left + index * step
        parts.append(
            f'<rect x="{x + step * 0.1:.1f}" y="{top + plot_height - bar_height:.1f}"'
            f' width="{max(step * 0.8, 0.5):.1f}" height="{bar_height:.1f}" fill="{BLUE}">'
            f"<title>{_esc(label)}: {_num(value)}</title></rect>"
        )
        if index % every == 0:
            parts.append(
                f'<text x="{x + step / 2:.1f}" y="{height - 10}" font-size="9" text-anchor="middle" fill="{MUTED}"'
                f" {_FONT}>{_esc(label)}</text>"
            )
    parts.append("</svg>")
    return "".join(parts)


def _empty(title: str, width: int) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="{_esc(title)}" viewBox="0 0 {width} 40"'
        f' width="100%" class="report-chart"><title>{_esc(title)}</title>'
        f'<text x="0" y="14" font-size="12" font-weight="bold" fill="{INK}" {_FONT}>{_esc(title)}</text>'
        f'<text x="0" y="32" font-size="10" fill="{MUTED}" {_FONT}>Nothing in this range.</text></svg>'
    )
