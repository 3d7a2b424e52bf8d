"""The client plan as HTML, SVG and PDF (gateway/coordination/render/): plain words and no codes,
escaping everywhere text from the record lands, accessibility basics, a real A4 PDF.
"""

from __future__ import annotations

import copy
import json
import re
import zlib
from datetime import date
from html.parser import HTMLParser
from typing import Any
from xml.etree import ElementTree

import pytest

from gateway.consent.vocabulary import CANONICAL
from gateway.coordination.render.build import build_view
from gateway.coordination.render.html import render_html
from gateway.coordination.render.model import ClientPlanView
from gateway.coordination.render.pdf import render_pdf
from gateway.coordination.render.resources import PlanResources, from_bundle_resources
from gateway.coordination.render.svg import network_svg
from gateway.samples import sample_files

TODAY = date(2026, 10, 20)
SVG_NS = "{http://www.w3.org/2000/svg}"


def resources() -> list[dict[str, Any]]:
    return [e["resource"] for p in sample_files() for e in json.loads(p.read_text())["entry"]]


def plan(name: str = "aino") -> PlanResources:
    return from_bundle_resources(copy.deepcopy(resources()), f"{name}-plan")


def view(name: str = "aino", lang: str = "fi") -> ClientPlanView:
    return build_view(plan(name), lang, TODAY)


def codings(value: Any) -> list[dict[str, Any]]:
    """Every Coding (a dict with system and code) anywhere inside `value`."""
    if isinstance(value, dict):
        own = [value] if "system" in value and "code" in value else []
        return own + [c for v in value.values() for c in codings(v)]
    if isinstance(value, list):
        return [c for v in value for c in codings(v)]
    return []


def words_of(value: Any) -> str:
    """Every display, text and name string of the samples: where a code may legitimately
    appear as a word (e.g. 'sote-keskus' inside 'Esimerkkilän sote-keskus')."""
    if isinstance(value, dict):
        return " ".join(
            v
            if k in ("display", "text", "name", "description", "title") and isinstance(v, str)
            else words_of(v)
            for k, v in value.items()
        )
    if isinstance(value, list):
        return " ".join(words_of(v) for v in value)
    return ""


class _Outline(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


@pytest.mark.parametrize("sample", ["aino", "mikko", "laura"])
@pytest.mark.parametrize("lang", ["fi", "en"])
def test_no_code_or_system_is_visible(sample: str, lang: str) -> None:
    page = render_html(view(sample, lang))
    for marker in ("urn:oid", CANONICAL, "hl7.org", "loinc", "LA28865-6", "CAREMGT", "IRCP"):
        assert marker not in page
    # The coordinator code as a word of its own (its display "Asiakasvastaava" is capitalised,
    # "asiakasvastaavalle" is inflected Finnish).
    assert not re.search(r"\basiakasvastaava\b", page)
    ours = {c["code"] for c in codings(resources()) if str(c["system"]).startswith(CANONICAL)}
    words = words_of(resources()).lower()
    bare = sorted(code for code in ours if code.lower() not in words)
    assert "tyokykykoordinaattori" in bare and "lahetetty" in bare  # the check has teeth
    for code in bare:
        assert not re.search(rf"\b{re.escape(code)}\b", page), code


def test_finnish_and_english_pages() -> None:
    fi, en = render_html(view(lang="fi")), render_html(view(lang="en"))
    assert '<html lang="fi">' in fi and '<html lang="en">' in en
    for heading in (
        "Kuka vie asiaani eteenpäin",
        "Kuka tekee mitä ja milloin",
        "Milloin palaamme tähän",
    ):
        assert heading in fi
    for heading in (
        "Who drives my process",
        "Who does what, and by when",
        "When we return to this",
    ):
        assert heading in en
    assert "Palaamme suunnitelmaan 15.1.2027." in fi
    assert "We return to the plan on 15 January 2027." in en
    assert "Satu Malli" in fi and "Kerro palautteesi asiakasvastaavallesi Satu Malli." in fi


def test_solutions_come_first() -> None:
    page = render_html(view())
    order = [
        page.index(f'id="{s}"') for s in ("coordinator", "goals", "responsibilities", "review")
    ]
    assert order == sorted(order)
    assert page.index("Ammatillisen kuntoutuksen selvitys") < page.index(
        "Työttömän terveystarkastus"
    )


def test_headings_and_picture_are_accessible() -> None:
    outline = _Outline()
    outline.feed(render_html(view()))
    tags = [t for t, _ in outline.tags]
    assert tags.count("h1") == 1 and tags.count("h2") >= 6
    svg = next(a for t, a in outline.tags if t == "svg")
    assert svg["role"] == "img" and svg["aria-labelledby"] == "network-title network-desc"
    assert not any(t == "script" for t in tags)


def test_svg_is_well_formed_with_title_description_and_highlighted_coordinator() -> None:
    root = ElementTree.fromstring(network_svg(view()))
    title = root.find(f"{SVG_NS}title")
    desc = root.find(f"{SVG_NS}desc")
    assert (
        title is not None and title.text == "Verkostoni: Aino Testinen ja hänen palveluverkostonsa"
    )
    assert desc is not None and "Satu Malli" in (desc.text or "")
    highlighted = [g for g in root.iter(f"{SVG_NS}g") if g.get("class") == "node coordinator"]
    assert len(highlighted) == 1
    texts = [t.text for t in highlighted[0].iter(f"{SVG_NS}text")]
    assert texts[0] == "Asiakasvastaava" and "Satu Malli, työkykykoordinaattori" in " ".join(texts)
    assert len([g for g in root.iter(f"{SVG_NS}g") if g.get("class") == "node"]) == 4


def test_record_text_is_escaped_in_the_page_and_the_picture() -> None:
    res = plan()
    hostile = 'A & B <script>alert("x")</script>'
    res.goals[0]["description"]["text"] = hostile
    res.directory["Organization/org-kela"]["name"] = "Kela <b>\x01bold</b> & co"
    v = build_view(res, "fi", TODAY)
    page = render_html(v)
    assert "<script>" not in page and "<b>" not in page
    assert "A &amp; B &lt;script&gt;" in page
    root = ElementTree.fromstring(network_svg(v))  # still well-formed XML
    assert any(t.text == "Kela <b>bold</b> & co" for t in root.iter(f"{SVG_NS}text"))


def test_many_lines_in_a_box_are_cut_with_an_ellipsis() -> None:
    res = plan()
    for i in range(12):
        extra = copy.deepcopy(next(t for t in res.tasks if t["id"] == "aino-task-kela"))
        extra["id"], extra["description"], extra["focus"] = f"x{i}", f"Tehtävä {i}", {}
        res.tasks.append(extra)
    root = ElementTree.fromstring(network_svg(build_view(res, "fi", TODAY)))
    kela = next(g for g in root.iter(f"{SVG_NS}g") if "Kela" in "".join(t.text or "" for t in g))
    lines = [t.text for t in kela.iter(f"{SVG_NS}text")]
    assert len(lines) == 9 and lines[-1] == "…"


def test_a_plan_without_coordinator_says_so_and_asks_feedback_at_the_next_visit() -> None:
    res = plan()
    res.care_teams = []
    page = render_html(build_view(res, "en", TODAY))
    assert "No coordinator has been named yet." in page
    assert "Tell us at your next appointment." in page


def pdf_pages(pdf: bytes) -> int:
    """Pages of a PDF: /Type /Page objects, also inside compressed object streams."""
    text = pdf
    for m in re.finditer(rb"stream\r?\n(.*?)\r?\nendstream", pdf, re.S):
        try:
            text += zlib.decompress(m.group(1))
        except zlib.error:
            continue
    return len(re.findall(rb"/Type\s*/Page(?![s\w])", text))


@pytest.mark.parametrize("lang", ["fi", "en"])
def test_pdf_is_a_real_document(lang: str) -> None:
    pdf = render_pdf(view(lang=lang))
    assert pdf.startswith(b"%PDF-")
    assert pdf.rstrip().endswith(b"%%EOF")
    assert pdf_pages(pdf) >= 1


def test_pdf_is_a4() -> None:
    pdf = render_pdf(view())
    text = pdf + b"".join(
        zlib.decompress(m.group(1))
        for m in re.finditer(rb"stream\r?\n(.*?)\r?\nendstream", pdf, re.S)
        if m.group(1)[:1] == b"x"  # zlib header
    )
    boxes = re.findall(rb"/MediaBox\s*\[\s*0\s+0\s+([\d.]+)\s+([\d.]+)\s*\]", text)
    assert boxes and all(abs(float(w) - 595.3) < 1 and abs(float(h) - 841.9) < 1 for w, h in boxes)
