"""The picture of the client's network as inline SVG: the client in the centre, the network's
organisations around with their people and what they do, the coordinator highlighted.

Plain string building, no SVG library: the picture is a dozen rectangles, lines and text rows;
the libraries (svgwrite, archived; drawsvg, with its own dependencies) add nothing we need, and a
string we build is deterministic and easy to audit. Every piece of text passes `_esc` (XML
escaping, invalid XML characters dropped); nothing else reaches the markup unescaped.
"""

from __future__ import annotations

import html
import math
import re
import textwrap

from gateway.coordination.render import texts
from gateway.coordination.render.model import ClientPlanView, NetworkNode

WIDTH, HEIGHT = 960, 700
CX, CY, RX, RY = WIDTH / 2, HEIGHT / 2, 318, 250
BOX_W, LINE_H, PAD, MAX_LINES = 310, 20, 10, 9
# Characters per row: DejaVu Sans averages ~0.53 em a character, its bold ~0.55 em.
WRAP, TITLE_WRAP = 35, 31
CLIENT_R = 72
# XML 1.0 forbids these characters even escaped (https://www.w3.org/TR/xml/#charsets).
# Inside the SVG so every renderer (browsers, WeasyPrint's own SVG engine) applies it.
STYLE = (
    "<style>"
    ".link{stroke:#8a96a3;stroke-width:2}"
    ".link.coordinator{stroke:#0b5cad;stroke-width:5}"
    ".node rect{fill:#ffffff;stroke:#8a96a3;stroke-width:1.5}"
    ".node.coordinator rect{fill:#e7f0fb;stroke:#0b5cad;stroke-width:4}"
    "text{font-family:'DejaVu Sans',Arial,sans-serif;font-size:15px;fill:#1a1a1a}"
    ".badge{font-weight:bold;fill:#0b5cad;font-size:14px;letter-spacing:0.5px}"
    ".org{font-weight:bold;font-size:16px}"
    ".task{fill:#33414f}"
    ".client circle{fill:#f6c445;stroke:#8a6d00;stroke-width:2}"
    ".you,.name{text-anchor:middle}.you{font-weight:bold;font-size:22px}"
    "</style>"
)
_INVALID_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _esc(value: str) -> str:
    return html.escape(_INVALID_XML.sub("", value), quote=True)


def _lines(node: NetworkNode, lang: str) -> list[tuple[str, str]]:
    """(css class, text) rows of a node's box, wrapped and capped at MAX_LINES."""
    rows: list[tuple[str, str]] = []
    if node.coordinator:
        rows.append(("badge", texts.text(lang, "svg_coordinator")))
    rows += [("org", line) for line in textwrap.wrap(node.title, TITLE_WRAP)]
    rows += [("person", line) for p in node.people for line in textwrap.wrap(p, WRAP)]
    for task in node.tasks:
        wrapped = textwrap.wrap(task, WRAP - 2)
        rows += [("task", ("• " if i == 0 else "  ") + w) for i, w in enumerate(wrapped)]
    return rows if len(rows) <= MAX_LINES else [*rows[: MAX_LINES - 1], ("more", "…")]


def _place(index: int, count: int, height: float) -> tuple[float, float]:
    """Top-left corner of box `index` of `count` on an ellipse, the first at the top."""
    angle = -math.pi / 2 + 2 * math.pi * index / max(count, 1)
    x = CX + RX * math.cos(angle) - BOX_W / 2
    y = CY + RY * math.sin(angle) - height / 2
    return (min(max(x, 8), WIDTH - BOX_W - 8), min(max(y, 8), HEIGHT - height - 8))


def _box(node: NetworkNode, x: float, y: float, rows: list[tuple[str, str]]) -> str:
    height = _height(rows)
    kind = "node coordinator" if node.coordinator else "node"
    parts = [
        f'<g class="{kind}">',
        f'<rect x="{x:.0f}" y="{y:.0f}" width="{BOX_W}" height="{height}" rx="10"/>',
    ]
    for i, (cls, line) in enumerate(rows):
        ty = y + PAD + LINE_H * (i + 1) - 4
        parts.append(f'<text class="{cls}" x="{x + PAD:.0f}" y="{ty:.0f}">{_esc(line)}</text>')
    parts.append("</g>")
    return "".join(parts)


def _description(view: ClientPlanView) -> str:
    """The picture in words, for screen readers (SVG <desc>)."""
    return "; ".join(
        ": ".join(x for x in (n.title, ", ".join((*n.people, *n.tasks))) if x) for n in view.network
    )


def _height(rows: list[tuple[str, str]]) -> int:
    return 2 * PAD + LINE_H * len(rows)


def _link(node: NetworkNode, x: float, y: float, height: int) -> str:
    kind = "link coordinator" if node.coordinator else "link"
    return (
        f'<line class="{kind}" x1="{CX:.0f}" y1="{CY:.0f}" '
        f'x2="{x + BOX_W / 2:.0f}" y2="{y + height / 2:.0f}"/>'
    )


def _client(view: ClientPlanView) -> list[str]:
    you = _esc(texts.text(view.lang, "you"))
    out = [
        f'<g class="client"><circle cx="{CX:.0f}" cy="{CY:.0f}" r="{CLIENT_R}"/>',
        f'<text class="you" x="{CX:.0f}" y="{CY - 4:.0f}">{you}</text>',
    ]
    for i, line in enumerate(textwrap.wrap(view.client_name, 14)[:2]):
        y = CY + 20 + 18 * i
        out.append(f'<text class="name" x="{CX:.0f}" y="{y:.0f}">{_esc(line)}</text>')
    out.append("</g>")
    return out


def network_svg(view: ClientPlanView) -> str:
    lang = view.lang
    title = texts.text(lang, "network_title", name=view.client_name or texts.text(lang, "you"))
    placed = []
    for i, node in enumerate(view.network):
        rows = _lines(node, lang)
        x, y = _place(i, len(view.network), _height(rows))
        placed.append((node, x, y, rows))
    # The picture is as tall as what it holds: no empty band above or below.
    top = min([CY - CLIENT_R, *(y for _, _, y, _ in placed)]) - 8
    bottom = max([CY + CLIENT_R, *(y + _height(r) for _, _, y, r in placed)]) + 8
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="network" '
        f'viewBox="0 {top:.0f} {WIDTH} {bottom - top:.0f}" '
        f'role="img" aria-labelledby="network-title network-desc" lang="{_esc(lang)}">',
        f'<title id="network-title">{_esc(title)}</title>',
        f'<desc id="network-desc">{_esc(_description(view))}</desc>',
        STYLE,
        *(_link(node, x, y, _height(rows)) for node, x, y, rows in placed),
        *(_box(node, x, y, rows) for node, x, y, rows in placed),
        *_client(view),
        "</svg>",
    ]
    return "\n".join(out)
