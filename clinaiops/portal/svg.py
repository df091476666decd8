"""SVG building blocks shared by every portal chart (clinaiops.portal.charts, clinaiops.portal.charts_monitoring).

Pure: the standard library only, no Django. The portal must work offline, without a CDN or a JavaScript
charting library, so charts are inline ``<svg>`` strings built from these pieces. The conventions they keep:

* every piece of caller-supplied text is escaped here (`esc`), so callers may mark a chart safe;
* the root carries ``role="img"``, an ``aria-label`` and a ``<title>`` (`svg_open`), and charts add a ``<desc>``
  summarising the data for screen-reader users;
* a ``viewBox`` with ``width="100%"``, so a chart scales with its container;
* colours from the Okabe-Ito palette, which stays distinguishable under the common forms of colour blindness,
  and every colour encoding doubled by a shape, line style or text label.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence

__all__ = [
    "BLUE", "CHAR_WIDTH", "CRISIS_RED", "FONT_SIZE", "GRID", "INK", "LEGEND_ROW", "LIGHT_BLUE", "MUTED", "ORANGE",
    "PURPLE", "SVG_NS", "TRACK", "VERMILLION", "WHITE", "Attr", "empty_svg", "esc", "halo", "legend", "number",
    "svg_open", "tag", "text", "text_width", "title", "truncate",
]  # fmt: skip

SVG_NS = "http://www.w3.org/2000/svg"

# Okabe-Ito colour-blind-safe palette plus neutrals.
BLUE = "#0072B2"
VERMILLION = "#D55E00"
ORANGE = "#E69F00"
PURPLE = "#CC79A7"
CRISIS_RED = "#B2182B"
INK = "#1F2933"
MUTED = "#52606D"
GRID = "#E4E7EB"
TRACK = "#EEF1F4"
LIGHT_BLUE = "#9CC7E4"
WHITE = "#FFFFFF"

FONT_SIZE = 11
CHAR_WIDTH = 0.6 * FONT_SIZE
"""Rough average glyph advance, used only for layout estimates."""
LEGEND_ROW = 15.0
"""Vertical distance between two wrapped legend rows."""

Attr = str | int | float | None
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f]")


def esc(value: object) -> str:
    """Escape ``value`` for SVG element content or attribute values.

    Characters that are illegal in XML 1.0 (C0 controls other than tab, newline and carriage return) are
    dropped so the output always parses.
    """
    return html.escape(_XML_ILLEGAL.sub("", str(value)), quote=True)


def number(value: float) -> str:
    """Format a number compactly (at most one decimal, no trailing ``.0``)."""
    rounded = round(value, 1)
    if rounded == int(rounded):
        return str(int(rounded))
    return f"{rounded:.1f}"


def tag(name: str, content: str | None = None, /, **attrs: Attr) -> str:
    """Build one SVG element.

    Keyword names map to attribute names: a trailing underscore is dropped (``class_``) and other underscores
    become hyphens (``stroke_width``). ``None`` values are omitted, floats are compacted and every value is
    escaped. ``content`` must already be escaped markup; ``None`` makes the element self-closing.
    """
    rendered = []
    for key, value in attrs.items():
        if value is None:
            continue
        shown = number(value) if isinstance(value, float) else str(value)
        rendered.append(f' {key.rstrip("_").replace("_", "-")}="{esc(shown)}"')
    head = f"<{name}{''.join(rendered)}"
    return f"{head}/>" if content is None else f"{head}>{content}</{name}>"


def text(label: str, /, **attrs: Attr) -> str:
    """A ``<text>`` element whose content is the escaped ``label``."""
    return tag("text", esc(label), **attrs)


def title(label: str) -> str:
    """A ``<title>`` element (the tooltip and accessible name)."""
    return tag("title", esc(label))


def halo(colour: str) -> dict[str, Attr]:
    """Text attributes with a white outline, so labels stay legible over lines."""
    return {"fill": colour, "stroke": WHITE, "stroke_width": 3, "stroke_linejoin": "round", "paint_order": "stroke"}


def truncate(label: str, max_chars: int) -> str:
    """Shorten ``label`` to ``max_chars`` characters, ending with an ellipsis."""
    if max_chars < 2 or len(label) <= max_chars:
        return label
    return label[: max_chars - 1].rstrip() + "\u2026"


def text_width(label: str) -> float:
    """Approximate rendered width of ``label`` at the base font size."""
    return len(label) * CHAR_WIDTH


def svg_open(width: int, height: int, label: str, *, css_class: str) -> str:
    """The opening ``<svg>`` tag and ``<title>`` of an accessible chart; close it with ``</svg>``."""
    head = tag(
        "svg",
        "",
        xmlns=SVG_NS,
        class_=css_class,
        viewBox=f"0 0 {width} {height}",
        width="100%",
        preserveAspectRatio="xMidYMid meet",
        role="img",
        aria_label=label,
        font_size=FONT_SIZE,
        fill=INK,
    )
    return head.removesuffix("</svg>") + title(label)


def empty_svg(width: int, height: int, label: str, message: str, css_class: str) -> str:
    """A valid, accessible chart that only shows ``message``."""
    return "".join(
        [
            svg_open(width, height, label, css_class=f"{css_class} chart-empty"),
            tag("desc", esc(message)),
            tag("rect", x=0.5, y=0.5, width=width - 1, height=height - 1, rx=6, fill="none", stroke=GRID),
            text(
                message,
                class_="empty-message",
                x=width / 2,
                y=height / 2,
                text_anchor="middle",
                dominant_baseline="middle",
                fill=MUTED,
            ),
            "</svg>",
        ]
    )


def legend(items: Sequence[tuple[str, str]], x0: float, y0: float, max_x: float) -> tuple[str, int]:
    """Lay out legend entries left to right, wrapping before ``max_x``.

    Each item is ``(swatch_svg, label)``; ``swatch_svg`` is drawn with its origin at the swatch's centre.
    Returns the ``<g class="legend">`` markup and the number of rows used (rows are `LEGEND_ROW` apart,
    starting at ``y0``).
    """
    parts = []
    x, y, rows = x0, y0, 1
    for swatch, label in items:
        item_w = 20 + text_width(label)
        if x > x0 and x + item_w > max_x:
            x, y, rows = x0, y + LEGEND_ROW, rows + 1
        parts.append(tag("g", swatch, transform=f"translate({number(x + 8)},{number(y)})"))
        parts.append(text(label, x=x + 20, y=y, dominant_baseline="middle"))
        x += item_w + 16
    return tag("g", "".join(parts), class_="legend"), rows
